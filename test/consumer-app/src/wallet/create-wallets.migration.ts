import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateWallets1700000000000 implements MigrationInterface {
  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE TABLE wallets (
      id text PRIMARY KEY,
      balance integer NOT NULL CHECK (balance >= 0),
      frozen integer NOT NULL DEFAULT 0 CHECK (frozen >= 0 AND frozen <= balance)
    )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE wallets`);
  }
}
