import { Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { OrderEntity } from './order.entity.js';
import { OrdersService, type OrdersSummary } from './orders.service.js';

/** The shop's own API: read orders and their status (the demo uses it). */
@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  @Get()
  summary(): Promise<OrdersSummary> {
    return this.orders.summary();
  }

  @Get(':id')
  async find(@Param('id') id: string): Promise<OrderEntity> {
    const order = await this.orders.find(id);
    if (!order) throw new NotFoundException(`order ${id} not found`);
    return order;
  }
}
