import { Body, Controller, Get, Post } from '@nestjs/common';
import { StockEntity } from './stock.entity.js';
import { RestockDto, StockService, type StockSummary } from './stock.service.js';

/** The warehouse's own API: stock a SKU and read the totals (the demo uses it). */
@Controller('stock')
export class StockController {
  constructor(private readonly stock: StockService) {}

  @Post()
  restock(@Body() dto: RestockDto): Promise<StockEntity> {
    return this.stock.restock(dto);
  }

  @Get()
  summary(): Promise<StockSummary> {
    return this.stock.summary();
  }
}
