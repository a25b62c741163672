import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Orders1763800000300 implements MigrationInterface {
  name = 'Orders1763800000300';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE orders (
        id         varchar(64)  PRIMARY KEY,
        customer   varchar(64)  NOT NULL,
        sku        varchar(64)  NOT NULL,
        qty        integer      NOT NULL CHECK (qty > 0),
        amount     bigint       NOT NULL CHECK (amount >= 0),
        status     varchar(16)  NOT NULL CHECK (status IN ('pending', 'confirmed', 'cancelled')),
        gid        varchar(128) NOT NULL,
        created_at timestamptz  NOT NULL DEFAULT now()
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE orders`);
  }
}
