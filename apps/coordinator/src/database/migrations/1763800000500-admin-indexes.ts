import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Indexes behind the admin list's filters, so it stays fast over millions of rows. */
export class AdminIndexes1763800000500 implements MigrationInterface {
  name = 'AdminIndexes1763800000500';

  async up(runner: QueryRunner): Promise<void> {
    // Keyset pagination: newest first, gid as the tie-breaker.
    await runner.query(`CREATE INDEX global_transactions_created_gid_idx ON global_transactions (created_at DESC, gid DESC)`);
    await runner.query(`CREATE INDEX global_transactions_status_created_idx ON global_transactions (status, created_at DESC, gid DESC)`);
    await runner.query(`CREATE INDEX global_transactions_mode_created_idx ON global_transactions (mode, created_at DESC, gid DESC)`);
    await runner.query(
      `CREATE INDEX global_transactions_attention_idx ON global_transactions (created_at DESC, gid DESC) WHERE needs_attention`,
    );
    await runner.query(`CREATE INDEX branches_participant_idx ON branches (participant, gid)`);
    await runner.query(`DROP INDEX IF EXISTS global_transactions_created_idx`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE INDEX global_transactions_created_idx ON global_transactions (created_at)`);
    await runner.query(`DROP INDEX branches_participant_idx`);
    await runner.query(`DROP INDEX global_transactions_attention_idx`);
    await runner.query(`DROP INDEX global_transactions_mode_created_idx`);
    await runner.query(`DROP INDEX global_transactions_status_created_idx`);
    await runner.query(`DROP INDEX global_transactions_created_gid_idx`);
  }
}
