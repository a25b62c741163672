import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ListTransactionsQueryDto,
  type TransactionCounts,
  type TransactionDetailView,
  type TransactionPage,
  type TransactionView,
} from '@app/protocol';
import { RequireRole } from '../auth/roles.decorator.js';
import { GidPipe } from '../common/gid.pipe.js';
import { AdminService } from './admin.service.js';

/** The admin API (PROTOCOL.md 6). */
@Controller('admin')
@RequireRole('admin')
export class AdminController {
  constructor(private readonly admin: AdminService) {}

  @Get('transactions')
  list(@Query() query: ListTransactionsQueryDto): Promise<TransactionPage> {
    return this.admin.list(query);
  }

  @Get('stats')
  counts(): Promise<TransactionCounts> {
    return this.admin.counts();
  }

  @Get('transactions/:gid')
  detail(@Param('gid', GidPipe) gid: string): Promise<TransactionDetailView> {
    return this.admin.detail(gid);
  }

  @Post('transactions/:gid/retry')
  @HttpCode(200)
  retry(@Param('gid', GidPipe) gid: string): Promise<TransactionView> {
    return this.admin.retry(gid);
  }

  @Post('transactions/:gid/rollback')
  @HttpCode(200)
  rollback(@Param('gid', GidPipe) gid: string): Promise<TransactionView> {
    return this.admin.rollback(gid);
  }
}
