/**
 * 2PC on real prepared transactions (XaAction), one set of cases run against every data layer
 * that has them, each on its real database: TypeORM and pg on Postgres (PREPARE TRANSACTION),
 * mysql2 on MariaDB (XA). Then what only MySQL/MariaDB's XA has: its id limits, XA RECOVER
 * seeing the whole server, and the connection that prepared, which stays tied to its
 * transaction until it is closed.
 *
 * The participant "restarting" is its pool closing entirely and a new pool and data layer
 * starting: the database then knows nothing of the old process. The database server itself is
 * not restarted (it is shared with other tests).
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import { BusinessFailure, OngoingNotSupportedError, PreparedTransactions, dtxMigrations, ongoing, type DtxDataLayer, type SqlDialect } from '@nest-dtx/sdk';
import { mysql2DataLayer } from '@nest-dtx/sdk/mysql2';
import { pgDataLayer } from '@nest-dtx/sdk/pg';
import { typeormDataLayer } from '@nest-dtx/sdk/typeorm';
import { sqlTestDatabase } from './sql-fixtures.js';

/** What every data layer's 2PC is held to: cases short enough to run against each in seconds. */
const LOCK_TIMEOUT_MS = 1000;

/** A participant process: a pool and a data layer of its own on the fixture's database. */
interface XaProcess<Tx> {
  layer: DtxDataLayer<Tx>;
  xa: PreparedTransactions<Tx>;
  /** Ends the pool entirely: as far as the database knows, the process is gone. */
  close(): Promise<void>;
}

interface XaFixture<Tx> {
  dialect: SqlDialect;
  /** Starts a participant process: a new pool of at most `connections` and a new data layer (lock timeout 1 s). */
  start(connections?: number): Promise<XaProcess<Tx>>;
  /** Business work through the library's handle: takes one unit of sku's stock. */
  sell(tx: Tx, sku: string): Promise<void>;
  // What other sessions see and do, on the fixture's own admin connections:
  /** A business row: sku with a stock of 10. */
  addSku(sku: string): Promise<void>;
  /** sku's committed stock. */
  qty(sku: string): Promise<number>;
  /** How many committed barrier rows gid has. */
  barrierRows(gid: string): Promise<number>;
  /** The ids of the prepared transactions the database shows (Postgres: this database's gids; MariaDB: XA RECOVER's data, server-wide). */
  preparedIds(): Promise<string[]>;
  /** Another session's UPDATE of sku's row, waiting at most 1 s for its lock: `updated`, or `locked` when it gave up. */
  updateElsewhere(sku: string): Promise<'updated' | 'locked'>;
  /** Another session holds sku's row (SELECT … FOR UPDATE in an open transaction) until release. */
  holdRow(sku: string): Promise<{ release(): Promise<void> }>;
  /** Rolls back whatever this run left prepared, closes the admin connections, drops the database. */
  tearDown(): Promise<void>;
}

/** A prefix per run: the MariaDB server's XA transactions are server-wide, and shared with other tests. */
const newRun = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

const call = (gid: string, phase: 'prepare' | 'commit' | 'rollback'): PhaseCallBody => ({ gid, branchId: 'b1', mode: '2pc', action: 'sell', phase, payload: {} });

/** The part of a branch's prepared-transaction id that only that branch has (participant aside): the hash of gid and branchId. */
const hashOf = (gid: string) => PreparedTransactions.xidFor('any', gid, 'b1').split(':').pop()!;

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The shared cases, against the fixture `setUp` makes (once for the file). */
function describeXaCases<Tx>(name: string, setUp: (run: string) => Promise<XaFixture<Tx>>): void {
  describe(`prepared transactions: ${name}`, () => {
    const run = newRun();
    const P = `shop-${run}`;
    const id = (gid: string) => `${run}-${gid}`;
    let f: XaFixture<Tx>;
    let p: XaProcess<Tx>;
    let businessRuns = 0;

    const sell = (sku: string) => async (tx: Tx) => {
      businessRuns++;
      await f.sell(tx, sku);
      return { sold: sku };
    };
    const xid = (gid: string, participant = P) => PreparedTransactions.xidFor(participant, gid, 'b1');
    const isPrepared = async (gid: string) => (await f.preparedIds()).some((one) => one.includes(hashOf(gid)));
    /** A branch whose business row is its own: sku = gid. */
    const branch = async (name: string) => {
      const gid = id(name);
      await f.addSku(gid);
      return gid;
    };

    beforeAll(async () => {
      f = await setUp(run);
      p = await f.start();
    });

    afterAll(async () => {
      await p?.close();
      await f?.tearDown();
    });

    it('prepare makes the change durable but invisible to other sessions; commit makes it visible; a second commit is fine', async () => {
      const gid = await branch('commit');
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toEqual({ kind: 'ok', result: { sold: gid }, duplicate: false, skipped: false });
      expect(await isPrepared(gid)).toBe(true);
      expect(await p.xa.listOwn(P)).toContain(xid(gid));
      expect(await f.qty(gid)).toBe(10);
      // The barrier row is part of the prepared transaction: not committed either.
      expect(await f.barrierRows(gid)).toBe(0);
      expect(await p.xa.commit(P, call(gid, 'commit'))).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: false });
      expect(await isPrepared(gid)).toBe(false);
      expect(await f.qty(gid)).toBe(9);
      expect(await f.barrierRows(gid)).toBe(1);
      expect(await p.xa.commit(P, call(gid, 'commit'))).toMatchObject({ kind: 'ok' });
      expect(await f.qty(gid)).toBe(9);
      expect(await p.xa.listOwn(P)).not.toContain(xid(gid));
    });

    it('commit of a branch that was never prepared is success and changes nothing', async () => {
      const gid = await branch('never');
      expect(await p.xa.commit(P, call(gid, 'commit'))).toMatchObject({ kind: 'ok' });
      expect(await f.qty(gid)).toBe(10);
      expect(await f.barrierRows(gid)).toBe(0);
      expect(await isPrepared(gid)).toBe(false);
    });

    it('rollback undoes the prepared change and leaves the marker: a repeated rollback is fine, a late prepare refuses without running', async () => {
      const gid = await branch('rollback');
      await p.xa.prepare(P, call(gid, 'prepare'), sell(gid));
      expect(await p.xa.rollback(P, call(gid, 'rollback'))).toMatchObject({ kind: 'ok' });
      expect(await isPrepared(gid)).toBe(false);
      expect(await f.qty(gid)).toBe(10);
      expect(await p.xa.rollback(P, call(gid, 'rollback'))).toMatchObject({ kind: 'ok' });
      const before = businessRuns;
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toEqual({
        kind: 'failed',
        message: `branch b1 of ${gid} was already rolled back`,
        details: { reason: 'rolled_back' },
      });
      expect(businessRuns).toBe(before);
      expect(await isPrepared(gid)).toBe(false);
      expect(await f.qty(gid)).toBe(10);
      // Only the marker.
      expect(await f.barrierRows(gid)).toBe(1);
    });

    it('a rollback before its prepare is a null compensation; the late prepare refuses (anti-hanging)', async () => {
      const gid = await branch('early-rollback');
      expect(await p.xa.rollback(P, call(gid, 'rollback'))).toMatchObject({ kind: 'ok' });
      const before = businessRuns;
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
      expect(businessRuns).toBe(before);
      expect(await isPrepared(gid)).toBe(false);
      expect(await f.qty(gid)).toBe(10);
    });

    it('a duplicate prepare while prepared answers duplicate without running the business again', async () => {
      const gid = await branch('dup-prepared');
      const before = businessRuns;
      await p.xa.prepare(P, call(gid, 'prepare'), sell(gid));
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
      expect(businessRuns - before).toBe(1);
      await p.xa.commit(P, call(gid, 'commit'));
      expect(await f.qty(gid)).toBe(9);
    });

    it('a prepare after the commit answers duplicate with the result of the first', async () => {
      const gid = await branch('dup-committed');
      const before = businessRuns;
      await p.xa.prepare(P, call(gid, 'prepare'), sell(gid));
      await p.xa.commit(P, call(gid, 'commit'));
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toEqual({ kind: 'ok', result: { sold: gid }, duplicate: true, skipped: true });
      expect(businessRuns - before).toBe(1);
      expect(await isPrepared(gid)).toBe(false);
      expect(await f.qty(gid)).toBe(9);
    });

    describe('a prepare that fails leaves nothing prepared, no barrier row, and its session clean', () => {
      // One connection: a session given back to the pool unclean would be the next one's.
      let one: XaProcess<Tx>;
      beforeAll(async () => {
        one = await f.start(1);
      });
      afterAll(async () => {
        await one?.close();
      });

      /** The session is clean: the next prepare on the pool's only connection takes, alone. */
      async function nextPrepareTakes(failed: string): Promise<void> {
        const gid = await branch(`${failed}-after`);
        expect(await one.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: false });
        await one.xa.commit(P, call(gid, 'commit'));
        expect(await f.qty(gid)).toBe(9);
        // Nothing of the failed work came along.
        expect(await f.qty(failed)).toBe(10);
      }

      it('a BusinessFailure answers failed', async () => {
        const gid = await branch('refused');
        const refuse = async (tx: Tx) => {
          await f.sell(tx, gid);
          throw new BusinessFailure('sold out', { reason: 'out_of_stock' });
        };
        expect(await one.xa.prepare(P, call(gid, 'prepare'), refuse)).toEqual({ kind: 'failed', message: 'sold out', details: { reason: 'out_of_stock' } });
        expect(await isPrepared(gid)).toBe(false);
        expect(await f.barrierRows(gid)).toBe(0);
        expect(await f.qty(gid)).toBe(10);
        await nextPrepareTakes(gid);
      });

      it('a plain error propagates (a transient failure); the branch can be prepared when retried', async () => {
        const gid = await branch('crash');
        const crash = async (tx: Tx) => {
          await f.sell(tx, gid);
          throw new Error('disk on fire');
        };
        await expect(one.xa.prepare(P, call(gid, 'prepare'), crash)).rejects.toThrow('disk on fire');
        expect(await isPrepared(gid)).toBe(false);
        expect(await f.barrierRows(gid)).toBe(0);
        expect(await f.qty(gid)).toBe(10);
        await nextPrepareTakes(gid);
        // The retry.
        expect(await one.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: false });
        await one.xa.rollback(P, call(gid, 'rollback'));
        expect(await f.qty(gid)).toBe(10);
      });

      it('an answer of ongoing is refused (a participant bug: an XA prepare ends in its call), and nothing it wrote is kept', async () => {
        const gid = await branch('ongoing');
        const waiting = async (tx: Tx) => {
          await f.sell(tx, gid);
          return ongoing({ retryAfterMs: 1000 });
        };
        await expect(one.xa.prepare(P, call(gid, 'prepare'), waiting)).rejects.toBeInstanceOf(OngoingNotSupportedError);
        expect(await isPrepared(gid)).toBe(false);
        expect(await f.barrierRows(gid)).toBe(0);
        expect(await f.qty(gid)).toBe(10);
        await nextPrepareTakes(gid);
      });

      it('a business statement that waits for a row lock gives up after the lock timeout', async () => {
        const gid = await branch('lock-wait');
        const hold = await f.holdRow(gid);
        let released = false;
        try {
          const startedAt = Date.now();
          await expect(one.xa.prepare(P, call(gid, 'prepare'), sell(gid))).rejects.toThrow(/lock/i);
          expect(Date.now() - startedAt).toBeLessThan(10_000);
          await hold.release();
          released = true;
        } finally {
          if (!released) await hold.release();
        }
        expect(await isPrepared(gid)).toBe(false);
        expect(await f.barrierRows(gid)).toBe(0);
        await nextPrepareTakes(gid);
      });
    });

    it('the prepared transaction holds its row locks until commit', async () => {
      const gid = await branch('locks');
      await p.xa.prepare(P, call(gid, 'prepare'), sell(gid));
      expect(await f.updateElsewhere(gid)).toBe('locked');
      await p.xa.commit(P, call(gid, 'commit'));
      expect(await f.updateElsewhere(gid)).toBe('updated');
      expect(await f.qty(gid)).toBe(9);
    });

    it('listOwn lists only the participant’s own prepared transactions (two participants, one database)', async () => {
      // The second name starts with the first: a prefix is not a participant.
      const [a, b] = [`${P}.l`, `${P}.l:eu`];
      const [ga, gb] = [await branch('own-a'), await branch('own-b')];
      await p.xa.prepare(a, call(ga, 'prepare'), sell(ga));
      await p.xa.prepare(b, call(gb, 'prepare'), sell(gb));
      expect(await p.xa.listOwn(a)).toEqual([xid(ga, a)]);
      expect(await p.xa.listOwn(b)).toEqual([xid(gb, b)]);
      expect(await p.xa.listOwn(`nobody-${run}`)).toEqual([]);
      // A participant finishes only its own: b's branch is not a's to commit.
      expect(await p.xa.commit(a, call(gb, 'commit'))).toMatchObject({ kind: 'ok' });
      expect(await f.qty(gb)).toBe(10);
      expect(await p.xa.listOwn(b)).toEqual([xid(gb, b)]);
      await p.xa.commit(a, call(ga, 'commit'));
      await p.xa.commit(b, call(gb, 'commit'));
      expect([await f.qty(ga), await f.qty(gb)]).toEqual([9, 9]);
      expect(await p.xa.listOwn(a)).toEqual([]);
      expect(await p.xa.listOwn(b)).toEqual([]);
    });

    it('a rollback racing a prepare that is still running ends with nothing prepared and nothing applied', async () => {
      const gid = await branch('race');
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const preparing = p.xa.prepare(P, call(gid, 'prepare'), async (tx) => {
        await f.sell(tx, gid);
        await gate;
        return null;
      });
      await wait(100);
      const rollingBack = p.xa.rollback(P, call(gid, 'rollback')).then(
        () => 'ok',
        () => 'error',
      );
      await wait(100);
      release();
      expect(await preparing).toMatchObject({ kind: 'ok' });
      // The first rollback either waited for the prepare and finished it, or timed out: retry as the coordinator would.
      let outcome = await rollingBack;
      for (let i = 0; outcome !== 'ok' || (await isPrepared(gid)); i++) {
        expect(i).toBeLessThan(5);
        outcome = await p.xa.rollback(P, call(gid, 'rollback')).then(
          () => 'ok',
          () => 'error',
        );
      }
      expect(await isPrepared(gid)).toBe(false);
      expect(await f.qty(gid)).toBe(10);
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    });

    it('after a restart (the pool closed, a new one started) the participant lists its prepared transactions, leaves them, and finishes them when told', async () => {
      const [kept, undone] = [await branch('restart-commit'), await branch('restart-rollback')];
      await p.xa.prepare(P, call(kept, 'prepare'), sell(kept));
      await p.xa.prepare(P, call(undone, 'prepare'), sell(undone));
      await p.close();
      p = await f.start();
      expect(await p.xa.listOwn(P)).toEqual(expect.arrayContaining([xid(kept), xid(undone)]));
      expect(await p.xa.listOwn(`nobody-${run}`)).toEqual([]);
      // Listing finished nothing: still prepared, still invisible, still locked.
      expect(await isPrepared(kept)).toBe(true);
      expect([await f.qty(kept), await f.qty(undone)]).toEqual([10, 10]);
      expect(await f.updateElsewhere(kept)).toBe('locked');
      await p.xa.commit(P, call(kept, 'commit'));
      await p.xa.rollback(P, call(undone, 'rollback'));
      expect([await f.qty(kept), await f.qty(undone)]).toEqual([9, 10]);
      expect(await p.xa.listOwn(P)).not.toContain(xid(kept));
      expect(await p.xa.listOwn(P)).not.toContain(xid(undone));
      expect(await p.xa.prepare(P, call(undone, 'prepare'), sell(undone))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    });
  });
}

// ---- Postgres --------------------------------------------------------------------------------

const STOCK_DDL: Record<SqlDialect, string> = {
  postgres: `CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0))`,
  mysql: `CREATE TABLE stock (sku varchar(200) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0)) ENGINE = InnoDB`,
};

type PostgresLibrary<Tx> = Pick<XaFixture<Tx>, 'start' | 'sell'>;

/** A Postgres database of its own with the barrier table (made by the fixtures, or by the library's `library` set-up) and the stock table. */
async function postgresFixture<Tx>(prefix: string, withBarrierTable: boolean, library: (url: string) => PostgresLibrary<Tx> | Promise<PostgresLibrary<Tx>>): Promise<XaFixture<Tx>> {
  const database = await sqlTestDatabase('postgres', prefix, withBarrierTable);
  const admin = new pg.Pool({ connectionString: database.db.url, max: 4 });
  await admin.query(STOCK_DDL.postgres);
  const { start, sell } = await library(database.db.url);
  const preparedIds = async () => (await admin.query<{ gid: string }>(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`)).rows.map((r) => r.gid);
  return {
    dialect: 'postgres',
    start,
    sell,
    async addSku(sku) {
      await admin.query(`INSERT INTO stock (sku, qty) VALUES ($1, 10)`, [sku]);
    },
    async qty(sku) {
      return (await admin.query<{ qty: number }>(`SELECT qty FROM stock WHERE sku = $1`, [sku])).rows[0].qty;
    },
    barrierRows: database.barrierRows,
    preparedIds,
    async updateElsewhere(sku) {
      const client = await admin.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL lock_timeout = '1s'`);
        await client.query(`UPDATE stock SET qty = qty WHERE sku = $1`, [sku]);
        await client.query('COMMIT');
        return 'updated';
      } catch (error) {
        await client.query('ROLLBACK');
        if ((error as { code?: string }).code === '55P03') return 'locked';
        throw error;
      } finally {
        client.release();
      }
    },
    async holdRow(sku) {
      const client = await admin.connect();
      await client.query('BEGIN');
      await client.query(`SELECT 1 FROM stock WHERE sku = $1 FOR UPDATE`, [sku]);
      return {
        async release() {
          await client.query('ROLLBACK');
          client.release();
        },
      };
    },
    async tearDown() {
      // A database with prepared transactions cannot be dropped.
      for (const gid of await preparedIds()) await admin.query(`ROLLBACK PREPARED '${gid}'`);
      await admin.end();
      await database.drop();
    },
  };
}

describeXaCases<pg.PoolClient>('pg (Postgres)', () =>
  postgresFixture('xa_pg', true, (url) => ({
    start(connections = 4) {
      const pool = new pg.Pool({ connectionString: url, max: connections });
      const layer = pgDataLayer(pool, { lockTimeoutMs: LOCK_TIMEOUT_MS });
      return Promise.resolve({ layer, xa: new PreparedTransactions(layer), close: () => pool.end() });
    },
    async sell(client, sku) {
      await client.query(`UPDATE stock SET qty = qty - 1 WHERE sku = $1`, [sku]);
    },
  })),
);

describeXaCases<EntityManager>('TypeORM (Postgres)', () =>
  // The barrier table from the SDK's migrations, as an app would make it.
  postgresFixture('xa_typeorm', false, async (url) => {
    const migrator = new DataSource({ type: 'postgres', url, migrations: [...dtxMigrations] });
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    return {
      async start(connections = 4) {
        const dataSource = new DataSource({ type: 'postgres', url, extra: { max: connections } });
        await dataSource.initialize();
        const layer = typeormDataLayer(dataSource, { lockTimeoutMs: LOCK_TIMEOUT_MS });
        return { layer, xa: new PreparedTransactions(layer), close: () => dataSource.destroy() };
      },
      async sell(manager, sku) {
        await manager.query(`UPDATE stock SET qty = qty - 1 WHERE sku = $1`, [sku]);
      },
    };
  }),
);

// ---- MariaDB ---------------------------------------------------------------------------------

interface RecoveredXid {
  formatID: number;
  gtrid: string;
  bqual: string;
}

interface MariaDbFixture extends XaFixture<mysql.PoolConnection> {
  name: string;
  url: string;
  /** XA RECOVER (the whole server's prepared XA transactions), its ids split. */
  recover(): Promise<RecoveredXid[]>;
  /** The ids of the server's live connections. */
  threads(): Promise<number[]>;
  /** A participant process on a pool of its own choosing. */
  startOn(pool: mysql.Pool): XaProcess<mysql.PoolConnection>;
  /** The admin pool, for work of another session. */
  admin: mysql.Pool;
}

async function mariadbFixture(prefix: string, run: string): Promise<MariaDbFixture> {
  const database = await sqlTestDatabase('mysql', prefix);
  const admin = mysql.createPool({ uri: database.db.url, connectionLimit: 4 });
  await admin.query(STOCK_DDL.mysql);
  const recover = async (): Promise<RecoveredXid[]> => {
    const [rows] = await admin.query('XA RECOVER');
    return (rows as { formatID: number; gtrid_length: number; bqual_length: number; data: Buffer | string }[]).map((row) => {
      const data = Buffer.isBuffer(row.data) ? row.data.toString('latin1') : String(row.data);
      const gtridLength = Number(row.gtrid_length);
      return { formatID: Number(row.formatID), gtrid: data.slice(0, gtridLength), bqual: data.slice(gtridLength, gtridLength + Number(row.bqual_length)) };
    });
  };
  const startOn = (pool: mysql.Pool): XaProcess<mysql.PoolConnection> => {
    const layer = mysql2DataLayer(pool, { lockTimeoutMs: LOCK_TIMEOUT_MS });
    return { layer, xa: new PreparedTransactions(layer), close: () => pool.end() };
  };
  return {
    dialect: 'mysql',
    name: database.db.name,
    url: database.db.url,
    admin,
    recover,
    startOn,
    start(connections = 4) {
      return Promise.resolve(startOn(mysql.createPool({ uri: database.db.url, connectionLimit: connections })));
    },
    async sell(connection, sku) {
      await connection.query(`UPDATE stock SET qty = qty - 1 WHERE sku = ?`, [sku]);
    },
    async addSku(sku) {
      await admin.query(`INSERT INTO stock (sku, qty) VALUES (?, 10)`, [sku]);
    },
    async qty(sku) {
      const [rows] = await admin.query(`SELECT qty FROM stock WHERE sku = ?`, [sku]);
      return (rows as { qty: number }[])[0].qty;
    },
    barrierRows: database.barrierRows,
    async preparedIds() {
      return (await recover()).map((x) => `${x.gtrid}${x.bqual}`);
    },
    async updateElsewhere(sku) {
      const connection = await admin.getConnection();
      try {
        await connection.query('SET SESSION innodb_lock_wait_timeout = 1');
        await connection.query(`UPDATE stock SET qty = qty WHERE sku = ?`, [sku]);
        return 'updated';
      } catch (error) {
        if ((error as { errno?: number }).errno === 1205) return 'locked';
        throw error;
      } finally {
        connection.release();
      }
    },
    async holdRow(sku) {
      const connection = await admin.getConnection();
      await connection.query('BEGIN');
      await connection.query(`SELECT 1 FROM stock WHERE sku = ? FOR UPDATE`, [sku]);
      return {
        async release() {
          await connection.query('ROLLBACK');
          connection.release();
        },
      };
    },
    async threads() {
      const [rows] = await admin.query(`SELECT id FROM information_schema.PROCESSLIST`);
      return (rows as { id: number }[]).map((r) => Number(r.id));
    },
    async tearDown() {
      // Only this run's (every participant name of the run has the run in it), on a connection
      // of its own, and on to the drop whatever a rollback answers.
      const cleaner = await mysql.createConnection(database.db.url);
      const failures: unknown[] = [];
      try {
        for (const x of await recover()) {
          if (!x.bqual.includes(run)) continue;
          const hex = (part: string) => `X'${Buffer.from(part, 'latin1').toString('hex')}'`;
          await cleaner.query(`XA ROLLBACK ${hex(x.gtrid)}, ${hex(x.bqual)}, ${x.formatID}`).catch((error: unknown) => failures.push(error));
        }
      } finally {
        await cleaner.end();
        await admin.end();
        await database.drop();
      }
      if (failures.length > 0) throw new AggregateError(failures, 'some prepared XA transactions of this run could not be rolled back');
    },
  };
}

describeXaCases<mysql.PoolConnection>('mysql2 (MariaDB)', (run) => mariadbFixture('xa_mysql2', run));

/**
 * A pool whose connections take `ms` to close: the server goes on seeing a closed connection
 * (and the prepared XA transaction tied to it) for a while, as it may under load.
 */
function slowToClose(pool: mysql.Pool, ms: number): mysql.Pool {
  const bound = <T extends object>(target: T, key: string | symbol): unknown => {
    const value: unknown = Reflect.get(target, key, target);
    return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
  };
  return new Proxy(pool, {
    get(target, key) {
      if (key !== 'getConnection') return bound(target, key);
      return async () => {
        const connection = await target.getConnection();
        return new Proxy(connection, {
          get(inner, innerKey) {
            if (innerKey === 'destroy') return () => void setTimeout(() => inner.destroy(), ms);
            return bound(inner, innerKey);
          },
        });
      };
    },
  });
}

describe('prepared transactions: mysql2 (MariaDB), what only XA has', () => {
  const run = newRun();
  const P = `shop-${run}`;
  const id = (gid: string) => `${run}-${gid}`;
  let f: MariaDbFixture;
  let p: XaProcess<mysql.PoolConnection>;

  const sell = (sku: string) => async (connection: mysql.PoolConnection) => {
    await f.sell(connection, sku);
    return { sold: sku };
  };
  const branch = async (name: string, on: MariaDbFixture = f) => {
    const gid = id(name);
    await on.addSku(gid);
    return gid;
  };
  const recovered = async (gid: string) => (await f.recover()).filter((x) => x.gtrid.includes(hashOf(gid)));

  beforeAll(async () => {
    f = await mariadbFixture('xa_maria', run);
    p = await f.start();
  });

  afterAll(async () => {
    await p?.close();
    await f?.tearDown();
  });

  it('the XA id fits MySQL’s limits (gtrid and bqual at most 64 bytes) with a participant name of 64 characters; a longer name is refused', async () => {
    const longest = `${P}-${'x'.repeat(64)}`.slice(0, 64);
    const gid = await branch('long-name');
    expect(await p.xa.prepare(longest, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: false });
    const [x, ...others] = await recovered(gid);
    expect(others).toEqual([]);
    expect(x.bqual).toBe(longest);
    expect(Buffer.byteLength(x.gtrid, 'latin1')).toBeLessThanOrEqual(64);
    expect(Buffer.byteLength(x.bqual, 'latin1')).toBeLessThanOrEqual(64);
    expect(await p.xa.listOwn(longest)).toEqual([PreparedTransactions.xidFor(longest, gid, 'b1')]);
    await p.xa.commit(longest, call(gid, 'commit'));
    expect(await f.qty(gid)).toBe(9);
    let ran = false;
    await expect(
      p.xa.prepare(`${longest}x`, call(id('too-long'), 'prepare'), () => {
        ran = true;
        return Promise.resolve(null);
      }),
    ).rejects.toThrow(/participant name/);
    expect(ran).toBe(false);
  });

  it('XA RECOVER shows the whole server: each database lists only its own, even under the same participant name, and a commit in one leaves the other’s branch prepared', async () => {
    // Two databases of one participant name on one server (a staging and a production, say),
    // and the same gid in both (gids may be chosen by the caller): two branches, not one.
    const other = await mariadbFixture('xa_maria_other', run);
    const q = await other.start();
    try {
      const gid = await branch('two-databases');
      await branch('two-databases', other);
      expect(await p.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: false });
      expect(await q.xa.prepare(P, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: false });
      expect(await recovered(gid)).toHaveLength(2);
      expect(await p.xa.listOwn(P)).toEqual([PreparedTransactions.xidFor(P, gid, 'b1')]);
      expect(await q.xa.listOwn(P)).toEqual([PreparedTransactions.xidFor(P, gid, 'b1')]);
      await p.xa.commit(P, call(gid, 'commit'));
      expect(await f.qty(gid)).toBe(9);
      expect(await other.qty(gid)).toBe(10);
      expect(await recovered(gid)).toHaveLength(1);
      expect(await p.xa.listOwn(P)).toEqual([]);
      expect(await q.xa.listOwn(P)).toEqual([PreparedTransactions.xidFor(P, gid, 'b1')]);
      await q.xa.rollback(P, call(gid, 'rollback'));
      expect(await recovered(gid)).toHaveLength(0);
      expect([await f.qty(gid), await other.qty(gid)]).toEqual([9, 10]);
    } finally {
      await q.close();
      await other.tearDown();
    }
  });

  it('the connection that prepared is closed, not given back to the pool, and the pool goes on working', async () => {
    const one = f.startOn(mysql.createPool({ uri: f.url, connectionLimit: 1 }));
    try {
      const [first, second, plain] = [await branch('closed-1'), await branch('closed-2'), await branch('closed-plain')];
      const threads: number[] = [];
      const tracked = (sku: string) => async (connection: mysql.PoolConnection) => {
        threads.push(connection.threadId);
        return sell(sku)(connection);
      };
      expect(await one.xa.prepare(P, call(first, 'prepare'), tracked(first))).toMatchObject({ kind: 'ok' });
      // Closed: the server lets the thread go (soon, not at once).
      for (let i = 0; (await f.threads()).includes(threads[0]); i++) {
        expect(i).toBeLessThan(50);
        await wait(50);
      }
      // The pool's only slot is free again: a barrier phase and another prepare go through.
      expect(await one.layer.runPhase(call(plain, 'prepare'), sell(plain))).toMatchObject({ kind: 'ok', duplicate: false });
      expect(await one.xa.prepare(P, call(second, 'prepare'), tracked(second))).toMatchObject({ kind: 'ok' });
      expect(threads[1]).not.toBe(threads[0]);
      await one.xa.commit(P, call(first, 'commit'));
      await one.xa.commit(P, call(second, 'commit'));
      expect([await f.qty(first), await f.qty(second), await f.qty(plain)]).toEqual([9, 9, 9]);
    } finally {
      await one.close();
    }
  });

  it('a commit or rollback that comes while the connection that prepared is still closing waits for it, then finishes the transaction', async () => {
    // Until the server has seen the close, the transaction is listed by XA RECOVER but XA
    // COMMIT from another connection answers XAER_NOTA, as if it were not there.
    const slow = f.startOn(slowToClose(mysql.createPool({ uri: f.url, connectionLimit: 4 }), 500));
    try {
      const [committed, rolledBack] = [await branch('closing-commit'), await branch('closing-rollback')];
      await slow.xa.prepare(P, call(committed, 'prepare'), sell(committed));
      expect(await slow.xa.commit(P, call(committed, 'commit'))).toMatchObject({ kind: 'ok' });
      expect(await recovered(committed)).toEqual([]);
      expect(await f.qty(committed)).toBe(9);
      await slow.xa.prepare(P, call(rolledBack, 'prepare'), sell(rolledBack));
      expect(await slow.xa.rollback(P, call(rolledBack, 'rollback'))).toMatchObject({ kind: 'ok' });
      expect(await recovered(rolledBack)).toEqual([]);
      expect(await f.qty(rolledBack)).toBe(10);
      expect(await slow.xa.prepare(P, call(rolledBack, 'prepare'), sell(rolledBack))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    } finally {
      // Past the slow closes.
      await wait(600);
      await slow.close();
    }
  });

  it('a deadlock in the business work (MariaDB has then rolled the XA transaction back, ROLLBACK ONLY) propagates as itself and leaves the session clean', async () => {
    const one = f.startOn(mysql.createPool({ uri: f.url, connectionLimit: 1 }));
    const other = await f.admin.getConnection();
    try {
      const [mine, theirs, after, ...more] = await Promise.all(['dl-mine', 'dl-theirs', 'dl-after', 'dl-more-1', 'dl-more-2', 'dl-more-3'].map((name) => branch(name)));
      // The other transaction weighs more (four rows changed, the XA one two: its barrier row and
      // one stock row), so InnoDB picks the XA one as the victim.
      await other.query('BEGIN');
      await other.query(`UPDATE stock SET qty = qty + 1 WHERE sku IN (?, ?, ?, ?)`, [theirs, ...more]);
      const preparing = one.xa.prepare(P, call(mine, 'prepare'), async (connection) => {
        await f.sell(connection, mine);
        await f.sell(connection, theirs);
        return null;
      });
      await wait(200);
      const crossing = other.query(`UPDATE stock SET qty = qty + 1 WHERE sku = ?`, [mine]);
      // Awaited below; not an unhandled rejection if an assertion fails first.
      crossing.catch(() => undefined);
      await expect(preparing).rejects.toMatchObject({ code: 'ER_LOCK_DEADLOCK' });
      await crossing;
      await other.query('ROLLBACK');
      expect(await recovered(mine)).toEqual([]);
      expect(await f.barrierRows(mine)).toBe(0);
      expect(await one.xa.prepare(P, call(after, 'prepare'), sell(after))).toMatchObject({ kind: 'ok', duplicate: false });
      await one.xa.commit(P, call(after, 'commit'));
      expect([await f.qty(mine), await f.qty(theirs), await f.qty(after)]).toEqual([10, 10, 9]);
    } finally {
      // Whatever happened, the other transaction ends before its connection goes back.
      await other.query('ROLLBACK').catch(() => other.destroy());
      other.release();
      await one.close();
    }
  });
});
