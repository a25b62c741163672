import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The rows an AT branch holds locked in its participant's database, for the admin view.
 *
 * - `branches.locks`: what the branch's prepare reported with its 2xx answer (BranchLocks:
 *   `{count, rows: [{table, key}]}`), written by the same statement that records the answer;
 *   NULL for every branch that is not an AT one.
 * - `branches.locked_at`: when that answer was recorded. The locks are released when the
 *   branch's phase 2 finishes: the write that makes it `committed` or `rolled_back` is the last
 *   to touch its row, so its `updated_at` then says when.
 * - A partial index over the branches holding locks now, oldest first, behind GET /admin/locks:
 *   a branch leaves it when its phase 2 finishes, so it stays as small as what is held.
 */
export class AtLocks1763800001000 implements MigrationInterface {
  name = 'AtLocks1763800001000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE branches ADD COLUMN locks jsonb NULL, ADD COLUMN locked_at timestamptz NULL`);
    await runner.query(
      `CREATE INDEX branches_held_locks_idx ON branches (locked_at, gid, branch_id)
       WHERE locks IS NOT NULL AND status NOT IN ('committed', 'rolled_back')`,
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX branches_held_locks_idx`);
    await runner.query(`ALTER TABLE branches DROP COLUMN locks, DROP COLUMN locked_at`);
  }
}
