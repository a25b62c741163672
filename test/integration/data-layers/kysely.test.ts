/**
 * The barrier conformance suite on Kysely, on Postgres and on MariaDB: the business work is a
 * query built on the local Transaction<DB>, and the barrier table comes from the SDK's Kysely
 * migration. The Kysely instances carry CamelCasePlugin, as many apps' do: the barrier's reads
 * (`branch_id`...) must not go through it. Then XA on Postgres (prepared transactions through a
 * controlled transaction), and its absence on MariaDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CamelCasePlugin, Kysely, Migrator, MysqlDialect, PostgresDialect, sql, type Generated, type Transaction } from 'kysely';
import { createPool } from 'mysql2';
import pg from 'pg';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import { BusinessFailure, PreparedTransactions, type DtxDataLayer, type SqlDialect } from '@nest-dtx/sdk';
import { dtxAtMigration, dtxBarrierMigration, kyselyDataLayer } from '@nest-dtx/sdk/kysely';
import { describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck } from './schema-check.js';
import { sqlFixture, sqlTestDatabase, type SqlTestDatabase } from './sql-fixtures.js';

interface LedgerDb {
  ledger: { id: Generated<number>; gid: string; phase: string };
}

const label = (dialect: SqlDialect) => (dialect === 'postgres' ? 'Postgres' : 'MariaDB');

function kyselyOn(dialect: SqlDialect, url: string): Kysely<LedgerDb> {
  return new Kysely<LedgerDb>({
    dialect:
      dialect === 'postgres'
        ? new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 12 }) })
        : new MysqlDialect({ pool: createPool({ uri: url, connectionLimit: 12 }) }),
    plugins: [new CamelCasePlugin()],
  });
}

const migrator = (db: Kysely<LedgerDb>, dialect: SqlDialect) =>
  new Migrator({ db, provider: { getMigrations: () => Promise.resolve({ '0000_dtx_barrier': dtxBarrierMigration(dialect), ...(dialect === 'postgres' ? { '0001_dtx_at': dtxAtMigration() } : {}) }) } });

async function migrateToLatest(db: Kysely<LedgerDb>, dialect: SqlDialect): Promise<void> {
  migrated(await migrator(db, dialect).migrateToLatest());
}

/** Throws the error a migration run reports (the Migrator answers it, it does not throw it). */
function migrated({ error }: { error?: unknown }): void {
  if (error) throw error instanceof Error ? error : new Error(`migration failed: ${JSON.stringify(error)}`);
}

const record = async (trx: Transaction<LedgerDb>, gid: string, phase: string) => void (await trx.insertInto('ledger').values({ gid, phase }).execute());

for (const dialect of ['postgres', 'mysql'] as const satisfies readonly SqlDialect[]) {
  describeBarrierConformance(`Kysely (${label(dialect)})`, { rowLocks: true, retentionJob: true, at: dialect === 'postgres' }, async () => {
    // The table is made by dtxBarrierMigration, through Kysely's Migrator, as an app's migrations would.
    const database = await sqlTestDatabase(dialect, `conf_kysely_${dialect}`, false);
    const db = kyselyOn(dialect, database.db.url);
    await migrateToLatest(db, dialect);
    return sqlFixture(database, kyselyDataLayer(db, { dialect, lockTimeoutMs: 1000 }), record, () => db.destroy());
  });

  describeSchemaCheck(`Kysely (${label(dialect)})`, async () => {
    const database = await sqlTestDatabase(dialect, `schema_kysely_${dialect}`, false);
    const db = kyselyOn(dialect, database.db.url);
    return {
      database,
      layer: kyselyDataLayer(db, { dialect }),
      fix: { barrier: `add dtxBarrierMigration('${dialect}') (@nest-dtx/sdk/kysely) to your Migrator's migrations and migrate`, at: 'add dtxAtMigration() after it' },
      migrate: () => migrateToLatest(db, dialect),
      record,
      tearDown: async () => {
        await db.destroy();
        await database.drop();
      },
    };
  });

  describe(`dtxBarrierMigration (${label(dialect)})`, () => {
    let database: SqlTestDatabase;
    let db: Kysely<LedgerDb>;

    beforeAll(async () => {
      database = await sqlTestDatabase(dialect, `kysely_migration_${dialect}`, false);
      db = kyselyOn(dialect, database.db.url);
    });

    afterAll(async () => {
      await db?.destroy();
      await database?.drop();
    });

    const tables = async (name: string) =>
      Number((await sql<{ n: number }>`SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ${name} AND table_schema = ${dialect === 'postgres' ? 'public' : database.db.name}`.execute(db)).rows[0].n);

    it(`up creates the barrier table${dialect === 'postgres' ? ' and dtxAtMigration the AT tables' : ''}, down drops them`, async () => {
      expect(await tables('dtx_barrier')).toBe(0);
      await migrateToLatest(db, dialect);
      expect(await tables('dtx_barrier')).toBe(1);
      if (dialect === 'postgres') {
        expect([await tables('dtx_at_undo'), await tables('dtx_at_lock')]).toEqual([1, 1]);
        migrated(await migrator(db, dialect).migrateDown());
        expect([await tables('dtx_at_undo'), await tables('dtx_at_lock'), await tables('dtx_barrier')]).toEqual([0, 0, 1]);
      }
      migrated(await migrator(db, dialect).migrateDown());
      expect(await tables('dtx_barrier')).toBe(0);
    });
  });
}

describe('Kysely XA (Postgres): prepared transactions', () => {
  const PARTICIPANT = 'shop';
  let database: SqlTestDatabase;
  let db: Kysely<LedgerDb>;
  let layer: DtxDataLayer<Transaction<LedgerDb>>;
  let businessRuns = 0;

  const call = (gid: string, phase: 'prepare' | 'commit' | 'rollback'): PhaseCallBody => ({ gid, branchId: 'b1', mode: '2pc', action: 'sell', phase, payload: {} });
  const xa = () => layer.xa!;
  const xid = (gid: string) => PreparedTransactions.xidFor(PARTICIPANT, gid, 'b1');
  const sell = (gid: string) => async (trx: Transaction<LedgerDb>) => {
    businessRuns++;
    await record(trx, gid, 'prepare');
    return { sold: gid };
  };
  const prepared = async () => (await sql<{ gid: string }>`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`.execute(db)).rows.map((r) => r.gid);
  // Gids unique to this run, though the database is fresh: the prepared-transaction ids are server-wide.
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const id = (gid: string) => `${run}-${gid}`;

  beforeAll(async () => {
    database = await sqlTestDatabase('postgres', 'kysely_xa');
    db = kyselyOn('postgres', database.db.url);
    layer = kyselyDataLayer(db, { dialect: 'postgres', lockTimeoutMs: 1000 });
  });

  afterAll(async () => {
    // A database with prepared transactions cannot be dropped.
    for (const gid of await prepared().catch(() => [])) await sql.raw(`ROLLBACK PREPARED '${gid}'`).execute(db);
    await db?.destroy();
    await database?.drop();
  });

  it('prepare leaves a prepared transaction whose change is invisible until the commit; commit is idempotent', async () => {
    const gid = id('g1');
    expect(await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid))).toEqual({ kind: 'ok', result: { sold: gid }, duplicate: false, skipped: false });
    expect(await prepared()).toContain(xid(gid));
    expect(await database.effects(gid)).toEqual([]);
    expect(await xa().commit(PARTICIPANT, call(gid, 'commit'))).toMatchObject({ kind: 'ok' });
    expect(await prepared()).not.toContain(xid(gid));
    expect(await database.effects(gid)).toEqual(['prepare']);
    expect(await xa().commit(PARTICIPANT, call(gid, 'commit'))).toMatchObject({ kind: 'ok' });
    expect(await database.effects(gid)).toEqual(['prepare']);
  });

  it('rollback discards the prepared change; a repeated rollback is success; the same prepare then refuses', async () => {
    const gid = id('g2');
    await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid));
    expect(await xa().rollback(PARTICIPANT, call(gid, 'rollback'))).toMatchObject({ kind: 'ok' });
    expect(await xa().rollback(PARTICIPANT, call(gid, 'rollback'))).toMatchObject({ kind: 'ok' });
    expect(await prepared()).not.toContain(xid(gid));
    expect(await database.effects(gid)).toEqual([]);
    expect(await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(await database.effects(gid)).toEqual([]);
  });

  it('a duplicate prepare, while prepared or after the commit, does not run the business again', async () => {
    const gid = id('g3');
    const before = businessRuns;
    await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid));
    expect(await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: true });
    await xa().commit(PARTICIPANT, call(gid, 'commit'));
    expect(await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'ok', duplicate: true });
    expect(businessRuns - before).toBe(1);
    expect(await database.effects(gid)).toEqual(['prepare']);
  });

  it('a rollback before its prepare is a null compensation, and the late prepare refuses without running', async () => {
    const gid = id('g4');
    const before = businessRuns;
    expect(await xa().rollback(PARTICIPANT, call(gid, 'rollback'))).toMatchObject({ kind: 'ok' });
    expect(await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(businessRuns).toBe(before);
    expect(await prepared()).not.toContain(xid(gid));
  });

  it('a business failure in prepare leaves no prepared transaction, no barrier row and no change', async () => {
    const gid = id('g5');
    const refused = await xa().prepare(PARTICIPANT, call(gid, 'prepare'), async (trx) => {
      await record(trx, gid, 'prepare');
      throw new BusinessFailure('sold out', { reason: 'out_of_stock' });
    });
    expect(refused).toEqual({ kind: 'failed', message: 'sold out', details: { reason: 'out_of_stock' } });
    expect(await prepared()).not.toContain(xid(gid));
    expect(await database.barrierRows(gid)).toBe(0);
    expect(await database.effects(gid)).toEqual([]);
  });

  it('the business method gets a Kysely Transaction, which cannot open a transaction of its own', async () => {
    const gid = id('g6');
    let handle: Transaction<LedgerDb> | undefined;
    await xa().prepare(PARTICIPANT, call(gid, 'prepare'), async (trx) => {
      handle = trx;
      await record(trx, gid, 'prepare');
      return null;
    });
    expect(handle?.isTransaction).toBe(true);
    expect(() => handle!.transaction()).toThrow(/not supported/);
    await xa().rollback(PARTICIPANT, call(gid, 'rollback'));
    expect(await database.effects(gid)).toEqual([]);
  });

  it('listOwn lists only this participant’s prepared transactions, also from a new instance (a restart), which can commit them', async () => {
    const gid = id('g7');
    await xa().prepare(PARTICIPANT, call(gid, 'prepare'), sell(gid));
    // The process goes away: its pool closes; the prepared transaction survives it.
    await db.destroy();
    db = kyselyOn('postgres', database.db.url);
    layer = kyselyDataLayer(db, { dialect: 'postgres', lockTimeoutMs: 1000 });
    expect(await xa().listOwn(PARTICIPANT)).toContain(xid(gid));
    expect(await xa().listOwn('someone-else')).toEqual([]);
    expect(await database.effects(gid)).toEqual([]);
    await xa().commit(PARTICIPANT, call(gid, 'commit'));
    expect(await xa().listOwn(PARTICIPANT)).not.toContain(xid(gid));
    expect(await database.effects(gid)).toEqual(['prepare']);
  });
});

describe('Kysely XA (MariaDB)', () => {
  it('is not offered: Kysely cannot close the connection that prepared an XA transaction', async () => {
    const database = await sqlTestDatabase('mysql', 'kysely_noxa');
    const db = kyselyOn('mysql', database.db.url);
    try {
      const layer = kyselyDataLayer(db, { dialect: 'mysql' });
      // The participant module refuses XaAction at start-up on a layer without xa.
      expect(layer.xa).toBeUndefined();
      expect(layer.description).toBe('Kysely (MySQL/MariaDB)');
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
