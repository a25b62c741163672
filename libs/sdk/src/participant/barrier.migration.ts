import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The barrier table of the SDK. Add this class to your app's TypeORM `migrations` list: it lives
 * in the participant's own database, next to the business tables it protects.
 */
export class CreateDtxBarrier1763800000100 implements MigrationInterface {
  name = 'CreateDtxBarrier1763800000100';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE IF NOT EXISTS dtx_barrier (
        gid        varchar(128) NOT NULL,
        branch_id  varchar(128) NOT NULL,
        phase      varchar(16)  NOT NULL CHECK (phase IN ('phase1', 'commit', 'rollback')),
        origin     varchar(16)  NOT NULL CHECK (origin IN ('phase1', 'commit', 'rollback')),
        result     jsonb        NULL,
        created_at timestamptz  NOT NULL DEFAULT now(),
        PRIMARY KEY (gid, branch_id, phase)
      )`);
    await runner.query(`CREATE INDEX IF NOT EXISTS dtx_barrier_created_idx ON dtx_barrier (created_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE IF EXISTS dtx_barrier`);
  }
}

/**
 * The SDK's TypeORM migrations, in order: add them to the app's DataSource,
 * `migrations: [...dtxMigrations, ...yourOwn]`, without knowing their names or timestamps.
 */
export const dtxMigrations: readonly (new () => MigrationInterface)[] = [CreateDtxBarrier1763800000100];
