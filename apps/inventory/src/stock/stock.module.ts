import { Module } from '@nestjs/common';
import { OrderStockService } from './order-stock.service.js';
import { StockController } from './stock.controller.js';
import { StockService } from './stock.service.js';

@Module({ controllers: [StockController], providers: [StockService, OrderStockService] })
export class StockModule {}
