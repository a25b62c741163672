import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  ListTransactionsQueryDto,
  type AdminStats,
  type HeldLocksPage,
  type TransactionDetailView,
  type TransactionPage,
  type TransactionView,
} from '@nest-dtx/protocol';
import { AdminStatsSchema, HeldLocksPageSchema, TransactionDetailViewSchema, TransactionPageSchema, TransactionViewSchema } from '../docs/view-schemas.js';
import { RequireRole } from '../auth/roles.decorator.js';
import { GidPipe } from '../common/path-param.pipes.js';
import { ErrorCode } from '@nest-dtx/protocol';
import { ApiAnswer, ApiErrors, ApiGidParam, ApiStoreBacked, TX_NOT_FOUND } from '../docs/api-responses.js';
import { AdminService } from './admin.service.js';
import { ListLocksQueryDto } from './list-locks.query.js';

/** The admin API (PROTOCOL.md 6). */
@ApiTags('admin')
@ApiStoreBacked()
@Controller('admin')
@RequireRole('admin')
export class AdminController {
  constructor(private readonly admin: AdminService) {}

  @Get('transactions')
  @ApiOperation({ summary: 'List transactions, newest first', description: 'Keyset pages: pass `nextCursor` back as `cursor`. PROTOCOL.md 6.' })
  @ApiAnswer(200, TransactionPageSchema, 'One page.')
  list(@Query() query: ListTransactionsQueryDto): Promise<TransactionPage> {
    return this.admin.list(query);
  }

  @Get('stats')
  @ApiOperation({
    summary: "Count transactions by status and mode, and this instance's admission control",
    description: 'The counts are of the transaction log, every instance\'s; `instance` is the instance that answered: begins it admitted and refused (503 OVERLOADED) since it started, and the participant calls waiting on it now.',
  })
  @ApiAnswer(200, AdminStatsSchema, 'The counts.')
  counts(): Promise<AdminStats> {
    return this.admin.counts();
  }

  @Get('transactions/:gid')
  @ApiOperation({ summary: 'A transaction and its full event history', description: 'Events oldest first. PROTOCOL.md 6.' })
  @ApiGidParam()
  @ApiAnswer(200, TransactionDetailViewSchema, 'The transaction with `events`; an AT branch whose prepare reported locked rows has `locks`.')
  @ApiErrors(TX_NOT_FOUND)
  detail(@Param('gid', GidPipe) gid: string): Promise<TransactionDetailView> {
    return this.admin.detail(gid);
  }

  @Get('locks')
  @ApiOperation({
    summary: 'Row locks AT branches hold now, held longest first',
    description:
      'Branches of AT actions whose prepare reported the rows it locked, whose phase 2 has not finished, of transactions not finished. ' +
      'Keyset pages: pass `nextCursor` back as `cursor`.',
  })
  @ApiAnswer(200, HeldLocksPageSchema, 'One page.')
  locks(@Query() query: ListLocksQueryDto): Promise<HeldLocksPage> {
    return this.admin.heldLocks(query);
  }

  @Post('transactions/:gid/retry')
  @HttpCode(200)
  @ApiOperation({ summary: 'Deliver phase 2 (or a waiting saga step) now', description: 'PROTOCOL.md 6.' })
  @ApiGidParam()
  @ApiAnswer(200, TransactionViewSchema, 'Scheduled; the view as it is now.')
  @ApiErrors(TX_NOT_FOUND, { status: 409, codes: [ErrorCode.TX_NOT_ACTIVE], why: 'terminal: nothing to retry' })
  retry(@Param('gid', GidPipe) gid: string): Promise<TransactionView> {
    return this.admin.retry(gid);
  }

  @Post('transactions/:gid/rollback')
  @HttpCode(200)
  @ApiOperation({ summary: 'Force the rollback of an active transaction (reason admin)', description: 'PROTOCOL.md 6.' })
  @ApiGidParam()
  @ApiAnswer(200, TransactionViewSchema, '`rolling_back` (or already rolling back / rolled back).')
  @ApiErrors(TX_NOT_FOUND, { status: 409, codes: [ErrorCode.TX_ALREADY_DECIDED, ErrorCode.TX_NOT_ACTIVE], why: 'already committing or committed' })
  rollback(@Param('gid', GidPipe) gid: string): Promise<TransactionView> {
    return this.admin.rollback(gid);
  }
}
