import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { LoyaltyService, SetPointsDto, type CustomerPoints, type PointsSummary } from './loyalty.service.js';

/** The service's own API: set a customer's points and read them (the demo uses it). */
@Controller('points')
export class LoyaltyController {
  constructor(private readonly loyalty: LoyaltyService) {}

  @Post()
  set(@Body() dto: SetPointsDto): Promise<CustomerPoints> {
    return this.loyalty.set(dto);
  }

  @Get()
  summary(): Promise<PointsSummary> {
    return this.loyalty.summary();
  }

  @Get(':customer')
  of(@Param('customer') customer: string): Promise<CustomerPoints> {
    return this.loyalty.of(customer);
  }
}
