import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { GlobalStatus, Mode, TransactionCounts } from '@nest-dtx/protocol';
import type { HeldLockPosition, LoadedTx, StoredBranchLocks, StoredHeldLock } from './records.js';
import { toDate } from './rows.js';
import { TransactionStore } from './transaction.store.js';

export interface TransactionFilter {
  status?: GlobalStatus;
  mode?: Mode;
  participant?: string;
  attention?: boolean;
  from?: Date;
  to?: Date;
  limit: number;
  /** Position after which the page starts (keyset pagination, newest first). */
  after?: { createdAt: string; gid: string };
}

export interface HeldLocksFilter {
  participant?: string;
  limit: number;
  /** Position after which the page starts (keyset pagination, oldest first). */
  after?: HeldLockPosition;
}

/** Branch statuses after phase 2: a branch in one of them holds no lock (the partial index's predicate says the same). */
const FINISHED = `('committed', 'rolled_back')`;

/** A timestamp as text to the microsecond, so a keyset position compares exactly as Postgres stored it. */
const microseconds = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Operator queries over the transaction log: filtered keyset pages, counts, held locks. Read
 * only, and with no engine meaning (no state machine, no lease): the admin API asks them here.
 * Every write to the log goes through the engine (engine/transaction-writer.ts).
 */
@Injectable()
export class TransactionQueries {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly transactions: TransactionStore,
  ) {}

  /** One page, newest first, plus one row to tell whether another page follows. */
  async list(filter: TransactionFilter): Promise<{ rows: LoadedTx[]; more: boolean; last: { createdAt: string; gid: string } | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.status) where.push(`t.status = ${param(filter.status)}`);
    if (filter.mode) where.push(`t.mode = ${param(filter.mode)}`);
    if (filter.attention !== undefined) where.push(filter.attention ? 't.needs_attention' : 'NOT t.needs_attention');
    if (filter.from) where.push(`t.created_at >= ${param(filter.from.toISOString())}`);
    if (filter.to) where.push(`t.created_at < ${param(filter.to.toISOString())}`);
    if (filter.participant) {
      where.push(`EXISTS (SELECT 1 FROM branches p WHERE p.gid = t.gid AND p.participant = ${param(filter.participant)})`);
    }
    if (filter.after) {
      where.push(`(t.created_at, t.gid) < (${param(filter.after.createdAt)}::timestamptz, ${param(filter.after.gid)})`);
    }
    const rows: { gid: string; created_at: string }[] = await this.db.query(
      `SELECT t.gid, to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
       FROM global_transactions t
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY t.created_at DESC, t.gid DESC
       LIMIT ${param(filter.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, filter.limit);
    const loaded = await this.transactions.loadMany(page.map((r) => r.gid));
    const last = page.at(-1);
    return { rows: loaded, more: rows.length > filter.limit, last: last ? { createdAt: last.created_at, gid: last.gid } : null };
  }

  /**
   * AT branches holding row locks now, oldest first: their phase 2 has not finished, nor has
   * their transaction. Read through branches_held_locks_idx (its predicate is repeated here
   * word for word, so the planner can use it), which holds only such branches. `now` is the
   * database's, the clock `locked_at` was written with.
   */
  async heldLocks(filter: HeldLocksFilter): Promise<{ rows: StoredHeldLock[]; now: Date; more: boolean; last: HeldLockPosition | null }> {
    const where = ['b.locks IS NOT NULL', `b.status NOT IN ${FINISHED}`, `t.status NOT IN ${FINISHED}`];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.participant) where.push(`b.participant = ${param(filter.participant)}`);
    if (filter.after) {
      const { lockedAt, gid, branchId } = filter.after;
      where.push(`(b.locked_at, b.gid, b.branch_id) > (${param(lockedAt)}::timestamptz, ${param(gid)}, ${param(branchId)})`);
    }
    const rows: RawHeldLock[] = await this.db.query(
      `SELECT b.gid, b.branch_id, b.participant, b.action, t.status AS transaction_status, b.locks, b.locked_at,
              ${microseconds('b.locked_at')} AS locked_at_key, now() AS now
       FROM branches b JOIN global_transactions t ON t.gid = b.gid
       WHERE ${where.join(' AND ')}
       ORDER BY b.locked_at, b.gid, b.branch_id
       LIMIT ${param(filter.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, filter.limit);
    const last = page.at(-1);
    return {
      rows: page.map((r) => ({
        gid: r.gid,
        branchId: r.branch_id,
        participant: r.participant,
        action: r.action,
        transactionStatus: r.transaction_status,
        locks: r.locks,
        lockedAt: toDate(r.locked_at),
      })),
      now: rows.length > 0 ? toDate(rows[0].now) : new Date(),
      more: rows.length > filter.limit,
      last: last ? { lockedAt: last.locked_at_key, gid: last.gid, branchId: last.branch_id } : null,
    };
  }

  /**
   * The locks each branch of `gid` reported, by branchId, with when each branch's phase 2
   * finished (the updated_at of its last write, the one that made it committed or rolled
   * back), and the database's now.
   */
  async locksOf(gid: string): Promise<{ byBranch: Map<string, StoredBranchLocks>; now: Date }> {
    const rows: { branch_id: string; locks: unknown; locked_at: Date; released_at: Date | null; now: Date }[] = await this.db.query(
      `SELECT branch_id, locks, locked_at, CASE WHEN status IN ${FINISHED} THEN updated_at END AS released_at, now() AS now
       FROM branches WHERE gid = $1 AND locks IS NOT NULL`,
      [gid],
    );
    const byBranch = new Map(
      rows.map((r) => [r.branch_id, { locks: r.locks, lockedAt: toDate(r.locked_at), releasedAt: r.released_at === null ? null : toDate(r.released_at) }]),
    );
    return { byBranch, now: rows.length > 0 ? toDate(rows[0].now) : new Date() };
  }

  async counts(): Promise<TransactionCounts> {
    const rows: { status: string; mode: string; attention: boolean; n: string }[] = await this.db.query(
      `SELECT status, mode, needs_attention AS attention, count(*) AS n FROM global_transactions GROUP BY 1, 2, 3`,
    );
    const counts: TransactionCounts = { byStatus: {}, byMode: {}, needsAttention: 0, total: 0 };
    for (const row of rows) {
      const n = Number(row.n);
      counts.byStatus[row.status] = (counts.byStatus[row.status] ?? 0) + n;
      counts.byMode[row.mode] = (counts.byMode[row.mode] ?? 0) + n;
      if (row.attention) counts.needsAttention += n;
      counts.total += n;
    }
    return counts;
  }
}

interface RawHeldLock {
  gid: string;
  branch_id: string;
  participant: string;
  action: string;
  transaction_status: GlobalStatus;
  locks: unknown;
  locked_at: Date;
  locked_at_key: string;
  now: Date;
}
