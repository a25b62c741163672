import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The index the retention job deletes through: finished transactions only, oldest first.
 * Partial, so it costs nothing for active rows and matches the job's
 * `WHERE status IN ('committed', 'rolled_back') AND updated_at < $1 ORDER BY updated_at, gid`.
 *
 * IF NOT EXISTS: on a log already large, an operator can build it beforehand without blocking
 * writes (`CREATE INDEX CONCURRENTLY global_transactions_finished_idx ...`, same definition),
 * and this migration then does nothing. Built here it holds a write lock for the build.
 */
export class RetentionIndex1763800000700 implements MigrationInterface {
  name = 'RetentionIndex1763800000700';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      `CREATE INDEX IF NOT EXISTS global_transactions_finished_idx ON global_transactions (updated_at, gid)
       WHERE status IN ('committed', 'rolled_back')`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX IF EXISTS global_transactions_finished_idx`);
  }
}
