import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The W3C traceparent a client began the transaction with, sent on every participant call. */
export class TraceParent1763800000600 implements MigrationInterface {
  name = 'TraceParent1763800000600';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE global_transactions ADD COLUMN trace_parent varchar(55) NULL`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE global_transactions DROP COLUMN trace_parent`);
  }
}
