/**
 * The barrier conformance suite on drizzle-orm, on Postgres (drizzle-orm/node-postgres) and on
 * MariaDB (drizzle-orm/mysql2). The business work writes through drizzle's query builder on the
 * transaction (`tx.insert(ledger)`), so the suite's rollback cases prove that the business change
 * and the barrier's rows share one transaction. Beyond the suite: the barrier's own statements
 * fail with the driver's error, and the SDK's drizzle definitions of the barrier table describe
 * the table barrierTableDdl makes.
 */
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzleMysql } from 'drizzle-orm/mysql2';
import { getTableConfig as pgTableConfig, PgDialect, pgTable, serial, text } from 'drizzle-orm/pg-core';
import { getTableConfig as mysqlTableConfig, int, MySqlDialect, mysqlTable, varchar } from 'drizzle-orm/mysql-core';
import type { SQL } from 'drizzle-orm';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { DtxDataLayer } from '@nest-dtx/sdk';
import { drizzleDataLayer, dtxBarrierMysql, dtxBarrierPg } from '@nest-dtx/sdk/drizzle';
import { call, describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck, migrateWithDdl } from './schema-check.js';
import { sqlFixture, sqlTestDatabase, type SqlTestDatabase } from './sql-fixtures.js';

/** LEDGER_DDL of sql-fixtures.ts, as drizzle tables. */
const pgLedger = pgTable('ledger', { id: serial('id').primaryKey(), gid: text('gid').notNull(), phase: text('phase').notNull() });
const mysqlLedger = mysqlTable('ledger', {
  id: int('id').autoincrement().primaryKey(),
  gid: varchar('gid', { length: 200 }).notNull(),
  phase: varchar('phase', { length: 32 }).notNull(),
});

/** The drizzle layer on a fresh Postgres database, the business work through drizzle's query builder on the transaction (not raw SQL). */
function postgresLayer(database: SqlTestDatabase) {
  // Room for the suite's ten concurrent calls, each holding a connection for its transaction.
  const pool = new pg.Pool({ connectionString: database.db.url, max: 12 });
  const layer = drizzleDataLayer(drizzlePg({ client: pool }), { dialect: 'postgres', lockTimeoutMs: 1000 });
  type Tx = Parameters<Parameters<typeof layer.runPhase>[1]>[0];
  return { layer, record: async (tx: Tx, gid: string, phase: string) => void (await tx.insert(pgLedger).values({ gid, phase })), close: () => pool.end() };
}

function mysqlLayer(database: SqlTestDatabase) {
  const pool = mysql.createPool({ uri: database.db.url, connectionLimit: 12 });
  const layer = drizzleDataLayer(drizzleMysql({ client: pool }), { dialect: 'mysql', lockTimeoutMs: 1000 });
  type Tx = Parameters<Parameters<typeof layer.runPhase>[1]>[0];
  return { layer, record: async (tx: Tx, gid: string, phase: string) => void (await tx.insert(mysqlLedger).values({ gid, phase })), close: () => pool.end() };
}

describeBarrierConformance('Drizzle (Postgres)', { rowLocks: true, retentionJob: true, at: true }, async () => {
  const database = await sqlTestDatabase('postgres', 'conf_drizzle_postgres');
  const { layer, record, close } = postgresLayer(database);
  return sqlFixture(database, layer, record, close);
});

describeBarrierConformance('Drizzle (MariaDB)', { rowLocks: true, retentionJob: true }, async () => {
  const database = await sqlTestDatabase('mysql', 'conf_drizzle_mysql');
  const { layer, record, close } = mysqlLayer(database);
  return sqlFixture(database, layer, record, close);
});

describeSchemaCheck('Drizzle (Postgres)', async () => {
  const database = await sqlTestDatabase('postgres', 'schema_drizzle_postgres', false);
  const { layer, record, close } = postgresLayer(database);
  return {
    database,
    layer,
    fix: {
      barrier: "export dtxBarrierPg (@nest-dtx/sdk/drizzle) from your schema and migrate with drizzle-kit, or run barrierTableDdl('postgres')",
      at: 'run atSchemaDdl() (@nest-dtx/sdk/drizzle) in a migration',
    },
    migrate: () => migrateWithDdl(database),
    record,
    tearDown: async () => {
      await close();
      await database.drop();
    },
  };
});

describeSchemaCheck('Drizzle (MariaDB)', async () => {
  const database = await sqlTestDatabase('mysql', 'schema_drizzle_mysql', false);
  const { layer, record, close } = mysqlLayer(database);
  return {
    database,
    layer,
    fix: { barrier: "export dtxBarrierMysql (@nest-dtx/sdk/drizzle) from your schema and migrate with drizzle-kit, or run barrierTableDdl('mysql')" },
    migrate: () => migrateWithDdl(database),
    record,
    tearDown: async () => {
      await close();
      await database.drop();
    },
  };
});

// Type-level: business methods get drizzle's own transaction type (with its query builder),
// inferred from the database's `transaction` callback. Checked by tsc (the CI's typecheck).
{
  const layerOf = (pool: pg.Pool) => drizzleDataLayer(drizzlePg({ client: pool }), { dialect: 'postgres' });
  type PgTx = Parameters<Parameters<ReturnType<typeof drizzlePg<Record<string, never>, pg.Pool>>['transaction']>[0]>[0];
  expectTypeOf(layerOf).returns.toEqualTypeOf<DtxDataLayer<PgTx>>();
  const mysqlLayerOf = (pool: mysql.Pool) => drizzleDataLayer(drizzleMysql({ client: pool }), { dialect: 'mysql' });
  type MysqlTx = Parameters<Parameters<ReturnType<typeof drizzleMysql<Record<string, never>, mysql.Pool>>['transaction']>[0]>[0];
  expectTypeOf(mysqlLayerOf).returns.toEqualTypeOf<DtxDataLayer<MysqlTx>>();
}

/** A column as a catalog describes it. */
interface ColumnShape {
  name: string;
  type: string;
  notNull: boolean;
  default: string | null;
}

describe('drizzleDataLayer, beyond the suite', () => {
  describe('Postgres', () => {
    let database: SqlTestDatabase;
    let pool: pg.Pool;
    beforeAll(async () => {
      database = await sqlTestDatabase('postgres', 'drizzle_barrier_def_pg');
      pool = new pg.Pool({ connectionString: database.db.url, max: 2 });
    });
    afterAll(async () => {
      await pool?.end();
      await database?.drop();
    });

    it('fails a phase behind a held row with the driver’s lock timeout error, not drizzle’s "Failed query"', async () => {
      const layer = drizzleDataLayer(drizzlePg({ client: pool }), { dialect: 'postgres', lockTimeoutMs: 1000 });
      // A gid that does not itself match /lock/.
      const hold = await database.holdPhase1!('held-pg');
      try {
        await expect(layer.runPhase(call('held-pg', 'try'), async () => {})).rejects.toMatchObject({
          code: '55P03',
          message: expect.stringMatching(/lock timeout/),
        });
      } finally {
        await hold.release();
      }
    });

    it('dtxBarrierPg has the columns, types, defaults, primary key, index and checks of barrierTableDdl', async () => {
      const config = pgTableConfig(dtxBarrierPg);
      const render = (value: unknown) => new PgDialect().sqlToQuery(value as SQL).sql;
      // Postgres spells varchar in full.
      const defined: ColumnShape[] = config.columns.map((c) => ({
        name: c.name,
        type: c.getSQLType().replace(/^varchar\(/, 'character varying('),
        notNull: c.notNull,
        default: c.default === undefined ? null : render(c.default),
      }));
      const { rows: columns } = await pool.query<ColumnShape>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull", pg_get_expr(d.adbin, d.adrelid) AS default
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = 'dtx_barrier'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      );
      expect(defined).toEqual(columns);
      expect(config.name).toBe('dtx_barrier');

      const { rows: constraints } = await pool.query<{ name: string; kind: string; columns: string[] }>(
        `SELECT c.conname AS name, c.contype AS kind, array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[] AS columns
         FROM pg_constraint c WHERE c.conrelid = 'dtx_barrier'::regclass ORDER BY c.conname`,
      );
      expect(config.primaryKeys.map((pk) => ({ name: pk.getName(), kind: 'p', columns: pk.columns.map((c) => c.name) }))).toEqual(constraints.filter((c) => c.kind === 'p'));
      expect(config.checks.map((c) => c.name).sort()).toEqual(constraints.filter((c) => c.kind === 'c').map((c) => c.name));

      const { rows: indexes } = await pool.query<{ name: string; columns: string[] }>(
        `SELECT i.relname AS name, array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS columns
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'dtx_barrier'::regclass AND NOT x.indisprimary`,
      );
      expect(config.indexes.map((i) => ({ name: i.config.name, columns: i.config.columns.map((c) => (c as { name: string }).name) }))).toEqual(indexes);
    });
  });

  describe('MariaDB', () => {
    let database: SqlTestDatabase;
    let pool: mysql.Pool;
    beforeAll(async () => {
      database = await sqlTestDatabase('mysql', 'drizzle_barrier_def_mysql');
      pool = mysql.createPool({ uri: database.db.url, connectionLimit: 2 });
    });
    afterAll(async () => {
      await pool?.end();
      await database?.drop();
    });

    it('fails a phase behind a held row with the driver’s lock timeout error, not drizzle’s "Failed query"', async () => {
      const layer = drizzleDataLayer(drizzleMysql({ client: pool }), { dialect: 'mysql', lockTimeoutMs: 1000 });
      const hold = await database.holdPhase1!('held-mysql');
      try {
        await expect(layer.runPhase(call('held-mysql', 'try'), async () => {})).rejects.toMatchObject({
          code: 'ER_LOCK_WAIT_TIMEOUT',
          message: expect.stringMatching(/Lock wait timeout exceeded/),
        });
      } finally {
        await hold.release();
      }
    });

    it('dtxBarrierMysql has the columns, types, character sets, collations, defaults, primary key, index and checks of barrierTableDdl', async () => {
      const config = mysqlTableConfig(dtxBarrierMysql);
      const render = (value: unknown) => new MySqlDialect().sqlToQuery(value as SQL).sql.toLowerCase();
      const defined: ColumnShape[] = config.columns.map((c) => ({
        name: c.name,
        type: c.getSQLType(),
        notNull: c.notNull,
        default: c.default === undefined ? null : render(c.default),
      }));
      // The column's type as the DDL writes it: its character set, and its collation unless it is the character set's default.
      const [columns] = await pool.query(
        `SELECT c.COLUMN_NAME AS name,
                CONCAT(c.COLUMN_TYPE, IF(c.CHARACTER_SET_NAME IS NULL, '', CONCAT(' CHARACTER SET ', c.CHARACTER_SET_NAME)),
                       IF(c.COLLATION_NAME IS NULL OR l.IS_DEFAULT = 'Yes', '', CONCAT(' COLLATE ', c.COLLATION_NAME))) AS type,
                c.IS_NULLABLE = 'NO' AS notNull, c.COLUMN_DEFAULT AS \`default\`
         FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS l ON l.COLLATION_NAME = c.COLLATION_NAME
         WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = 'dtx_barrier' ORDER BY c.ORDINAL_POSITION`,
      );
      // MariaDB reports a nullable column without a default as defaulting to NULL.
      const stored = (columns as (Omit<ColumnShape, 'notNull'> & { notNull: number })[]).map((c) => ({
        ...c,
        notNull: c.notNull === 1,
        default: c.default === 'NULL' ? null : c.default,
      }));
      expect(defined).toEqual(stored);

      const [keys] = await pool.query(
        `SELECT INDEX_NAME AS name, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS columns FROM information_schema.STATISTICS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'dtx_barrier' GROUP BY INDEX_NAME ORDER BY INDEX_NAME`,
      );
      expect([
        ...config.indexes.map((i) => ({ name: i.config.name, columns: i.config.columns.map((c) => (c as { name: string }).name).join(',') })),
        ...config.primaryKeys.map((pk) => ({ name: 'PRIMARY', columns: pk.columns.map((c) => c.name).join(',') })),
      ]).toEqual(keys);

      // MariaDB names the DDL's column checks after their columns; the clauses must say the same.
      const [checks] = await pool.query(
        `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'dtx_barrier'`,
      );
      const normal = (clause: string) => clause.replace(/[`\s]/g, '').toLowerCase();
      expect(config.checks.map((c) => normal(new MySqlDialect().sqlToQuery(c.value).sql)).sort()).toEqual(
        (checks as { clause: string }[]).map((c) => normal(c.clause)).sort(),
      );
    });
  });
});

describe('drizzleDataLayer on a database whose driver it does not know', () => {
  it('refuses an answer it cannot read rather than take it for "no row changed" (a duplicate, whose business work it would skip)', async () => {
    // A driver answering rows as a bare array (postgres-js does): affected counts would read 0.
    const tx = { execute: () => Promise.resolve([]) };
    const db = { ...tx, transaction: <T>(work: (t: typeof tx) => Promise<T>) => work(tx) };
    let ran = false;
    const answer = drizzleDataLayer(db, { dialect: 'postgres' }).runPhase(call('unknown-driver', 'try'), () => {
      ran = true;
      return Promise.resolve();
    });
    await expect(answer).rejects.toThrow(/unexpected result of SET \(is the database drizzle-orm\/node-postgres\?\)/);
    expect(ran).toBe(false);
  });
});
