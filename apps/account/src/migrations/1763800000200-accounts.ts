import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Accounts1763800000200 implements MigrationInterface {
  name = 'Accounts1763800000200';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE accounts (
        id      varchar(64) PRIMARY KEY,
        balance bigint NOT NULL CHECK (balance >= 0),
        frozen  bigint NOT NULL DEFAULT 0 CHECK (frozen >= 0 AND frozen <= balance)
      )`);
    await runner.query(`
      CREATE TABLE pending_credits (
        gid        varchar(128) NOT NULL,
        branch_id  varchar(128) NOT NULL,
        account_id varchar(64)  NOT NULL REFERENCES accounts (id),
        amount     bigint       NOT NULL CHECK (amount > 0),
        PRIMARY KEY (gid, branch_id)
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE pending_credits`);
    await runner.query(`DROP TABLE accounts`);
  }
}
