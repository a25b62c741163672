import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res, UseGuards } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Response } from 'express';
import { AddBranchDto, BeginTransactionDto, DecideDto, type BranchOutcomeView, type TransactionView } from '@app/protocol';
import { RequireRole } from '../auth/roles.decorator.js';
import { GidPipe } from '../common/gid.pipe.js';
import { TransactionsService } from './transactions.service.js';

/** The client REST API (PROTOCOL.md 3). Each route is one call into the service. */
@Controller('v1/transactions')
@RequireRole('client')
// Rate limited per key or address (RATE_LIMIT_PER_MINUTE); runs after the global ApiKeyGuard.
@UseGuards(ThrottlerGuard)
export class TransactionsController {
  constructor(private readonly transactions: TransactionsService) {}

  @Post()
  async begin(
    @Body() dto: BeginTransactionDto,
    @Headers('traceparent') traceparent: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TransactionView> {
    const { created, view } = await this.transactions.begin(dto, traceparent);
    res.status(created ? 201 : 200);
    return view;
  }

  @Post(':gid/branches')
  addBranch(@Param('gid', GidPipe) gid: string, @Body() dto: AddBranchDto): Promise<BranchOutcomeView> {
    return this.transactions.addBranch(gid, dto);
  }

  @Post(':gid/commit')
  @HttpCode(200)
  commit(@Param('gid', GidPipe) gid: string, @Body() dto: DecideDto): Promise<TransactionView> {
    return this.transactions.commit(gid, dto.wait ?? false);
  }

  @Post(':gid/rollback')
  @HttpCode(200)
  rollback(@Param('gid', GidPipe) gid: string, @Body() dto: DecideDto): Promise<TransactionView> {
    return this.transactions.rollback(gid, dto.wait ?? false);
  }

  @Get(':gid')
  get(@Param('gid', GidPipe) gid: string): Promise<TransactionView> {
    return this.transactions.get(gid);
  }
}
