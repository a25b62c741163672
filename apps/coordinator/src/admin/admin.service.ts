import { Injectable, Logger } from '@nestjs/common';
import {
  ErrorCode,
  type AdminStats,
  type ListTransactionsQueryDto,
  type BranchDetailView,
  type HeldLocksPage,
  type TransactionCounts,
  type TransactionDetailView,
  type TransactionPage,
  type TransactionView,
} from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { TransactionNotFoundError } from '../engine/errors.js';
import { TransactionEngine } from '../engine/transaction-engine.service.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { RecoveryService } from '../recovery/recovery.service.js';
import type { LoadedTx } from '../store/records.js';
import { TransactionQueries } from '../store/transaction.queries.js';
import { asApiError } from '../api/engine-errors.js';
import { toTransactionView } from '../api/transaction.view.js';
import { dateFilter, decodeTransactionCursor, encodeTransactionCursor } from './admin-filters.js';
import { branchLocksView, decodeLockCursor, encodeLockCursor, heldLockView } from './lock-views.js';
import type { ListLocksQueryDto } from './list-locks.query.js';
import { traceIdOf } from '../telemetry/trace-parent.js';

const DEFAULT_PAGE = 50;

/**
 * The operator's API (PROTOCOL.md 6): inspect and steer transactions. It writes nothing itself:
 * a transaction is read and changed through the engine, and the listings, counts and held locks
 * (queries with no engine meaning) are read from TransactionQueries.
 */
@Injectable()
export class AdminService {
  private readonly logger = new Logger(AdminService.name);

  constructor(
    private readonly queries: TransactionQueries,
    private readonly engine: TransactionEngine,
    private readonly recovery: RecoveryService,
    private readonly gates: ParticipantGates,
    private readonly config: CoordinatorConfig,
  ) {}

  async list(query: ListTransactionsQueryDto): Promise<TransactionPage> {
    const page = await this.queries.list({
      status: query.status,
      mode: query.mode,
      participant: query.participant,
      attention: query.attention === undefined ? undefined : query.attention === 'true',
      from: dateFilter(query.from, 'from'),
      to: dateFilter(query.to, 'to'),
      limit: query.limit ?? DEFAULT_PAGE,
      after: query.cursor ? decodeTransactionCursor(query.cursor) : undefined,
    });
    return { items: page.rows.map(toTransactionView), nextCursor: page.more && page.last ? encodeTransactionCursor(page.last) : null };
  }

  /** The transaction with its history; each AT branch whose prepare reported locks shows them, and for how long they were held. */
  async detail(gid: string): Promise<TransactionDetailView> {
    const loaded = await this.engine.get(gid).catch(rethrowAsApiError);
    const [events, locks] = await Promise.all([this.engine.events(gid), this.queries.locksOf(gid)]);
    const view = toTransactionView(loaded);
    const branches = view.branches.map((branch): BranchDetailView => {
      const stored = locks.byBranch.get(branch.branchId);
      const shown = stored ? branchLocksView(stored, locks.now) : null;
      return shown ? { ...branch, locks: shown } : branch;
    });
    const traceId = traceIdOf(loaded.tx.traceParent);
    return { ...view, branches, events, traceId, traceUrl: this.config.traceUrl(traceId) };
  }

  /** Locks AT branches hold now, oldest first, in keyset pages. */
  async heldLocks(query: ListLocksQueryDto): Promise<HeldLocksPage> {
    const after = query.cursor ? decodeLockCursor(query.cursor) : undefined;
    if (after === null) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'cursor is not a cursor this API returned', { field: 'cursor' });
    const page = await this.queries.heldLocks({ participant: query.participant, limit: query.limit ?? DEFAULT_PAGE, after });
    return {
      items: page.rows.flatMap((row) => heldLockView(row, page.now) ?? []),
      nextCursor: page.more && page.last ? encodeLockCursor(page.last) : null,
    };
  }

  /** The log's counts (every instance's transactions) and this instance's admission control. */
  async counts(): Promise<AdminStats> {
    const counts: TransactionCounts = await this.queries.counts();
    const { admitted, refused } = this.gates.admissionCounts();
    return { ...counts, instance: { instanceId: this.config.instanceId, admitted, refused, queued: this.gates.backlog() } };
  }

  /**
   * Schedules phase-2 delivery (or a waiting saga's next step, or an active workflow's resume) now; a transaction an instance
   * holds under a live lease is left to it (it is being delivered now) and answered as it is.
   */
  async retry(gid: string): Promise<TransactionView> {
    const { outcome: made, loaded } = await this.engine.retryNow(gid).catch(rethrowAsApiError);
    if (made === 'not_retryable') throw new ApiError(409, ErrorCode.TX_NOT_ACTIVE, `transaction ${gid} is ${loaded.tx.status}: nothing to retry`);
    if (made === 'leased') {
      // An instance holds a live lease on it: it is being driven right now, which is what a retry asks for.
      forTransaction(this.logger, gid).log('retry requested by an operator: an instance is driving it now');
      return toTransactionView(await this.current(gid, loaded));
    }
    forTransaction(this.logger, gid).log('retry requested by an operator');
    this.recovery.runOnce().catch((error: unknown) => this.logger.warn(`retry pass failed: ${String(error)}`));
    return toTransactionView(await this.current(gid, loaded));
  }

  /** Forces the rollback of an active transaction (reason admin); phase 2 follows in the background. */
  async rollback(gid: string): Promise<TransactionView> {
    const { loaded } = await this.engine.decide(gid, { type: 'rollback_requested', reason: 'admin' }, false).catch(rethrowAsApiError);
    forTransaction(this.logger, gid).log('rolled back by an operator');
    return toTransactionView(loaded);
  }

  /** The transaction as it is now, or as read before when it is gone since. */
  private async current(gid: string, before: LoadedTx): Promise<LoadedTx> {
    return this.engine.get(gid).catch((error: unknown) => {
      if (error instanceof TransactionNotFoundError) return before;
      throw error;
    });
  }
}

/** An engine error in the API's words (a 404 for an unknown gid, a 409 for a refusal). */
function rethrowAsApiError(error: unknown): never {
  throw asApiError(error);
}
