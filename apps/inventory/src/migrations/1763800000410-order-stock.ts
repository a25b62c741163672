import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Stock taken for orders that arrive as messages (mode msg): one row each time an order's
 * message took effect. Deliberately no unique key on the order: the barrier alone keeps a
 * redelivered message from taking stock twice, and the outbox demo counts these rows to show it
 * (a unique key would turn a second take into an error and hide it).
 */
export class OrderStock1763800000410 implements MigrationInterface {
  name = 'OrderStock1763800000410';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE order_stock (
        id         bigserial    PRIMARY KEY,
        gid        varchar(128) NOT NULL,
        branch_id  varchar(128) NOT NULL,
        order_id   varchar(64)  NOT NULL,
        sku        varchar(64)  NOT NULL REFERENCES stock (sku),
        qty        integer      NOT NULL CHECK (qty > 0),
        taken_at   timestamptz  NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE INDEX order_stock_order_idx ON order_stock (order_id)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE order_stock`);
  }
}
