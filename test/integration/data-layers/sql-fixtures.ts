/**
 * Helpers for the SQL adapters' conformance fixtures: a fresh database with the barrier table
 * and a ledger table, and the reads the suite makes, on Postgres or MariaDB.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { BusinessFailure, atSchemaDdl, barrierTableDdl, type DtxDataLayer, type SqlDialect } from '@nest-dtx/sdk';
import { createMariaDbDatabase, createTestDatabase, type TestDatabase } from '../../support/databases.js';
import type { ConformanceFixture } from './conformance.js';

/** The ledger the business work writes: one row per phase that took effect. */
export const LEDGER_DDL: Record<SqlDialect, string> = {
  postgres: `CREATE TABLE ledger (id serial PRIMARY KEY, gid text NOT NULL, phase text NOT NULL)`,
  mysql: `CREATE TABLE ledger (id int AUTO_INCREMENT PRIMARY KEY, gid varchar(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, phase varchar(32) NOT NULL) ENGINE = InnoDB`,
};

/** The insert the business work runs, in the dialect's placeholders. */
export const LEDGER_INSERT: Record<SqlDialect, string> = {
  postgres: `INSERT INTO ledger (gid, phase) VALUES ($1, $2)`,
  mysql: `INSERT INTO ledger (gid, phase) VALUES (?, ?)`,
};

/** A database of its own, its tables, and the suite's reads and prepared-transaction hold, over a plain admin connection. */
export interface SqlTestDatabase extends Pick<ConformanceFixture<unknown>, 'effects' | 'barrierRows' | 'holdPhase1' | 'age' | 'lockWaiters'> {
  db: TestDatabase;
  dialect: SqlDialect;
  /** Runs statements of the test's own (DDL), outside any data layer. */
  exec(...statements: string[]): Promise<void>;
  /** Closes the admin connections and drops the database. */
  drop(): Promise<void>;
}

export async function sqlTestDatabase(dialect: SqlDialect, prefix: string, withBarrierTable = true): Promise<SqlTestDatabase> {
  return dialect === 'postgres' ? postgresDatabase(prefix, withBarrierTable) : mariadbDatabase(prefix, withBarrierTable);
}

async function postgresDatabase(prefix: string, withBarrierTable: boolean): Promise<SqlTestDatabase> {
  const db = await createTestDatabase(prefix);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  for (const ddl of [...(withBarrierTable ? [...barrierTableDdl('postgres'), ...atSchemaDdl()] : []), LEDGER_DDL.postgres]) await pool.query(ddl);
  let holds = 0;
  return {
    db,
    dialect: 'postgres',
    async exec(...statements) {
      for (const text of statements) await pool.query(text);
    },
    async effects(gid) {
      const { rows } = await pool.query<{ phase: string }>(`SELECT phase FROM ledger WHERE gid = $1 ORDER BY id`, [gid]);
      return rows.map((r) => r.phase);
    },
    async barrierRows(gid) {
      const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM dtx_barrier WHERE gid = $1`, [gid]);
      return rows[0].n;
    },
    async holdPhase1(gid) {
      const client = await pool.connect();
      const xid = `conformance-hold-${db.name}-${++holds}`;
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO dtx_barrier (gid, branch_id, phase, origin) VALUES ($1, 'b1', 'phase1', 'phase1')`, [gid]);
        await client.query(`PREPARE TRANSACTION '${xid}'`);
      } finally {
        client.release();
      }
      return { release: async () => void (await pool.query(`ROLLBACK PREPARED '${xid}'`)) };
    },
    async age(gid, ms) {
      await pool.query(`UPDATE dtx_barrier SET created_at = created_at - $2::bigint * interval '1 millisecond' WHERE gid = $1`, [gid, ms]);
    },
    async lockWaiters() {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return rows[0].n;
    },
    async drop() {
      await pool.end();
      await db.drop();
    },
  };
}

async function mariadbDatabase(prefix: string, withBarrierTable: boolean): Promise<SqlTestDatabase> {
  const db = await createMariaDbDatabase(prefix);
  const pool = mysql.createPool({ uri: db.url, connectionLimit: 4 });
  for (const ddl of [...(withBarrierTable ? barrierTableDdl('mysql') : []), LEDGER_DDL.mysql]) await pool.query(ddl);
  let holds = 0;
  return {
    db,
    dialect: 'mysql',
    async exec(...statements) {
      for (const text of statements) await pool.query(text);
    },
    async effects(gid) {
      const [rows] = await pool.query(`SELECT phase FROM ledger WHERE gid = ? ORDER BY id`, [gid]);
      return (rows as { phase: string }[]).map((r) => r.phase);
    },
    async barrierRows(gid) {
      const [rows] = await pool.query(`SELECT count(*) AS n FROM dtx_barrier WHERE gid = ?`, [gid]);
      return Number((rows as { n: number }[])[0].n);
    },
    async holdPhase1(gid) {
      const connection = await pool.getConnection();
      const xid = `'conformance-hold-${++holds}', '${db.name}'`;
      try {
        await connection.query(`XA START ${xid}`);
        await connection.query(`INSERT INTO dtx_barrier (gid, branch_id, phase, origin) VALUES (?, 'b1', 'phase1', 'phase1')`, [gid]);
        await connection.query(`XA END ${xid}`);
        await connection.query(`XA PREPARE ${xid}`);
      } finally {
        // Closed: the prepared XA transaction stays, for another connection to finish.
        connection.destroy();
      }
      return { release: async () => void (await pool.query(`XA ROLLBACK ${xid}`)) };
    },
    async age(gid, ms) {
      await pool.query(`UPDATE dtx_barrier SET created_at = created_at - INTERVAL ? MICROSECOND WHERE gid = ?`, [ms * 1000, gid]);
    },
    // A barrier insert still running: an insert of one row returns at once unless it waits for
    // a row lock. (Not INNODB_TRX's LOCK WAIT: InnoDB refreshes that table at most every 0.1 s,
    // and not at all while it is read more often than that.)
    async lockWaiters() {
      const [rows] = await pool.query(
        `SELECT count(*) AS n FROM information_schema.PROCESSLIST
         WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') AND INFO LIKE 'INSERT%dtx_barrier%'`,
      );
      return Number((rows as { n: number }[])[0].n);
    },
    async drop() {
      await pool.end();
      await db.drop();
    },
  };
}

/**
 * A SQL adapter's whole fixture: its layer, the suite's business work from one way of recording
 * a phase through the library's handle (refuse and crash record first, so the rollback has a
 * change to undo), and a teardown that closes the library, then drops the database.
 */
export function sqlFixture<Tx>(
  database: SqlTestDatabase,
  layer: DtxDataLayer<Tx>,
  record: (tx: Tx, gid: string, phase: string) => Promise<void>,
  close: () => Promise<void>,
): ConformanceFixture<Tx> {
  return {
    ...database,
    layer,
    record,
    async refuse(tx, gid) {
      await record(tx, gid, 'try');
      throw new BusinessFailure('no stock', { reason: 'out_of_stock' });
    },
    async crash(tx, gid) {
      await record(tx, gid, 'try');
      throw new Error('disk on fire');
    },
    async tearDown() {
      await close();
      await database.drop();
    },
  };
}
