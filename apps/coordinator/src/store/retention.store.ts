import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** Statuses no transaction ever leaves (PROTOCOL.md 2): the only ones retention may delete. */
export const TERMINAL_STATUSES = ['committed', 'rolled_back'] as const;

/** Deletes finished transactions from the log, one bounded batch per statement. */
@Injectable()
export class RetentionStore {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * Deletes at most `limit` transactions that reached a terminal status more than `ageMs` ago,
   * with their branches (ON DELETE CASCADE) and their history events (no foreign key: deleted
   * here), in one statement, hence one commit: a transaction is gone whole or not at all.
   *
   * - The age is measured on the database clock (`now()`), the clock that wrote `updated_at`,
   *   so instances with skewed clocks agree. `updated_at` of a terminal row is the instant it
   *   became terminal: terminal rows are never updated again.
   * - The partial index global_transactions_finished_idx serves the WHERE and ORDER BY, so a
   *   batch reads `limit` index entries, not the table.
   * - FOR UPDATE SKIP LOCKED: instances running retention at once take disjoint batches, and a
   *   row someone else holds (a reader locking it, another batch) is left for a later pass.
   *
   * Returns how many transactions it deleted.
   */
  async deleteFinished(ageMs: number, limit: number): Promise<number> {
    const rows: { removed: number }[] = await this.db.query(
      `WITH expired AS (
         SELECT gid FROM global_transactions
         WHERE status IN ('committed', 'rolled_back') AND updated_at < now() - $1::bigint * interval '1 millisecond'
         ORDER BY updated_at, gid
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       ), events AS (
         DELETE FROM transaction_events e USING expired x WHERE e.gid = x.gid
       ), removed AS (
         DELETE FROM global_transactions t USING expired x WHERE t.gid = x.gid RETURNING t.gid
       )
       SELECT count(*)::int AS removed FROM removed`,
      [ageMs, limit],
    );
    return rows[0]?.removed ?? 0;
  }
}
