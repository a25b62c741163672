import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Inventory1763800000400 implements MigrationInterface {
  name = 'Inventory1763800000400';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE stock (
        sku       varchar(64) PRIMARY KEY,
        available integer NOT NULL CHECK (available >= 0),
        reserved  integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        sold      integer NOT NULL DEFAULT 0 CHECK (sold >= 0)
      )`);
    await runner.query(`
      CREATE TABLE reservations (
        gid       varchar(128) NOT NULL,
        branch_id varchar(128) NOT NULL,
        sku       varchar(64)  NOT NULL REFERENCES stock (sku),
        qty       integer      NOT NULL CHECK (qty > 0),
        PRIMARY KEY (gid, branch_id)
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE reservations`);
    await runner.query(`DROP TABLE stock`);
  }
}
