import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { GlobalStatus, Mode, TransactionCounts } from '@nest-dtx/protocol';
import type { LoadedTx } from './records.js';
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

/** Operator queries over the transaction log: filtered keyset pages and counts. */
@Injectable()
export class AdminStore {
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

  /** Makes a decided (or running saga) transaction due now, fencing off whoever holds it. */
  async makeDue(gid: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(
      `WITH g AS (
         UPDATE global_transactions SET next_attempt_at = now(), lease_owner = NULL, lease_until = NULL,
                version = version + 1, updated_at = now()
         WHERE gid = $1 AND next_attempt_at IS NOT NULL AND (status IN ('committing', 'rolling_back') OR mode = 'saga')
         RETURNING gid
       ), e AS (
         INSERT INTO transaction_events (gid, type, detail) SELECT gid, 'admin_retry', '{}'::jsonb FROM g
       )
       SELECT gid FROM g`,
      [gid],
    );
    return rows.length > 0;
  }
}
