import type { MigrationInterface, QueryRunner } from 'typeorm';
import { atSchemaDdl, dropAtSchemaDdl } from '../core/at-sql.js';
import { barrierTableDdl, dropBarrierTableDdl } from '../core/barrier-sql.js';
import { typeormDialect } from './dialect.js';

/**
 * The barrier table of the SDK (Postgres, MySQL or MariaDB, after the DataSource's type). Add
 * this class to your app's TypeORM `migrations` list: it lives in the participant's own
 * database, next to the business tables it protects.
 */
export class CreateDtxBarrier1763800000100 implements MigrationInterface {
  name = 'CreateDtxBarrier1763800000100';

  async up(runner: QueryRunner): Promise<void> {
    for (const ddl of barrierTableDdl(typeormDialect(String(runner.connection.options.type)))) await runner.query(ddl);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const ddl of dropBarrierTableDdl()) await runner.query(ddl);
  }
}

/**
 * AT mode's tables and functions (Postgres; nothing on MySQL/MariaDB, which have no AT mode).
 * The triggers on the app's own tables are put there at start-up, from the module's
 * `at.tables` option.
 */
export class CreateDtxAt1763800000200 implements MigrationInterface {
  name = 'CreateDtxAt1763800000200';

  async up(runner: QueryRunner): Promise<void> {
    if (typeormDialect(String(runner.connection.options.type)) !== 'postgres') return;
    for (const ddl of atSchemaDdl()) await runner.query(ddl);
  }

  async down(runner: QueryRunner): Promise<void> {
    if (typeormDialect(String(runner.connection.options.type)) !== 'postgres') return;
    for (const ddl of dropAtSchemaDdl()) await runner.query(ddl);
  }
}

/**
 * The SDK's TypeORM migrations, in order: add them to the app's DataSource,
 * `migrations: [...dtxMigrations, ...yourOwn]`, without knowing their names or timestamps.
 */
export const dtxMigrations: readonly (new () => MigrationInterface)[] = [CreateDtxBarrier1763800000100, CreateDtxAt1763800000200];
