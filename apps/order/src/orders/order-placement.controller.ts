import { Body, Controller, Post } from '@nestjs/common';
import { OrderPlacementService, PlaceOrderDto, type PlacedOrder } from './order-placement.service.js';

/**
 * The shop's order intake: POST /orders creates an order and its message in one local
 * transaction (mode msg). 201 once the order committed (`submitted: false` when the submit got
 * no answer: the message is delivered all the same); 409 ORDER_REFUSED when the order was not
 * created (say its id is taken), and then nothing is delivered.
 */
@Controller('orders')
export class OrderPlacementController {
  constructor(private readonly placement: OrderPlacementService) {}

  @Post()
  place(@Body() order: PlaceOrderDto): Promise<PlacedOrder> {
    return this.placement.place(order);
  }
}
