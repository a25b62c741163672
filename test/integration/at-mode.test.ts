/**
 * AT mode on a real Postgres, at the data layer: the capture triggers record before and after
 * images of whatever SQL or ORM wrote (TypeORM repositories, raw SQL through pg), lock the rows
 * for the global transaction, refuse plain writes to locked rows, make a second global
 * transaction wait and then fail or proceed, release the locks at commit, restore exactly on
 * rollback, and refuse to overwrite a row something changed behind the locks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Column, DataSource, Entity, PrimaryColumn, PrimaryGeneratedColumn, type EntityManager } from 'typeorm';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import { AtRowLockedError, BusinessFailure, type AtDataLayer, type DtxDataLayer } from '@nest-dtx/sdk';
import { typeormDataLayer } from '@nest-dtx/sdk/typeorm';
import { pgDataLayer } from '@nest-dtx/sdk/pg';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';

@Entity('accounts')
class Account {
  @PrimaryColumn('text') id!: string;
  @Column('numeric', { precision: 12, scale: 2, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } }) balance!: number;
  @Column('jsonb', { default: {} }) tags!: Record<string, unknown>;
  @Column('timestamptz', { default: () => 'now()' }) updatedAt!: Date;
}

@Entity('ledger')
class LedgerEntry {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'ALWAYS' }) id!: number;
  @Column('text') account!: string;
  @Column('numeric', { precision: 12, scale: 2 }) amount!: string;
}

let db: TestDatabase;
let dataSource: DataSource;
let pool: pg.Pool;
let layer: DtxDataLayer<EntityManager>;
let at: AtDataLayer<EntityManager>;
let rawAt: AtDataLayer<pg.PoolClient>;

const call = (gid: string, phase: 'prepare' | 'commit' | 'rollback', branchId = 'b1'): PhaseCallBody => ({ gid, branchId, mode: '2pc', action: 'move', phase, payload: {} });
const WAIT = { lockWaitMs: 300 };

/** A transfer written as plain TypeORM repository calls: no compensation anywhere. */
const transfer = (from: string, to: string, amount: number) => async (manager: EntityManager) => {
  const accounts = manager.getRepository(Account);
  const source = await accounts.findOneByOrFail({ id: from });
  if (source.balance < amount) throw new BusinessFailure('insufficient funds', { balance: source.balance });
  source.balance -= amount;
  source.updatedAt = new Date(Date.now() + 3_600_000);
  await accounts.save(source);
  await accounts.increment({ id: to }, 'balance', amount);
  await manager.getRepository(LedgerEntry).insert([{ account: from, amount: String(-amount) }, { account: to, amount: String(amount) }]);
  return { moved: amount };
};

async function snapshot(): Promise<{ accounts: unknown[]; ledger: unknown[] }> {
  return {
    accounts: await dataSource.query(`SELECT to_jsonb(a) AS row FROM accounts a ORDER BY id`),
    ledger: await dataSource.query(`SELECT to_jsonb(l) AS row FROM ledger l ORDER BY id`),
  };
}

async function balance(id: string): Promise<number> {
  const rows: { balance: string }[] = await dataSource.query(`SELECT balance FROM accounts WHERE id = $1`, [id]);
  return Number(rows[0]?.balance);
}

async function count(table: 'dtx_at_undo' | 'dtx_at_lock', gid: string): Promise<number> {
  const rows: { n: number }[] = await dataSource.query(`SELECT count(*)::int AS n FROM ${table} WHERE gid = $1`, [gid]);
  return rows[0].n;
}

async function withAccounts(...rows: [string, number][]): Promise<void> {
  for (const [id, amount] of rows) await dataSource.query(`INSERT INTO accounts (id, balance, tags) VALUES ($1, $2, '{"kind": "test"}')`, [id, amount]);
}

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('at', [
    `CREATE TABLE accounts (id text PRIMARY KEY, balance numeric(12,2) NOT NULL CHECK (balance >= 0), tags jsonb NOT NULL DEFAULT '{}',
       "updatedAt" timestamptz NOT NULL DEFAULT now(), doubled numeric GENERATED ALWAYS AS (balance * 2) STORED)`,
    `CREATE TABLE ledger (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account text NOT NULL, amount numeric(12,2) NOT NULL)`,
    `CREATE TABLE pairs (a int, b text, note text, PRIMARY KEY (b, a))`,
  ]));
  // The entities, on a second DataSource over the same database (the first ran the migrations).
  const orm = new DataSource({ type: 'postgres', url: db.url, entities: [Account, LedgerEntry], extra: { max: 10 } });
  await orm.initialize();
  await dataSource.destroy();
  dataSource = orm;
  layer = typeormDataLayer(dataSource);
  at = layer.at!;
  pool = new pg.Pool({ connectionString: db.url, max: 5 });
  rawAt = pgDataLayer(pool).at!;
  await at.install(['accounts', 'ledger', 'pairs'], { installTriggers: true });
});

afterAll(async () => {
  await pool?.end();
  await dataSource?.destroy();
  await db?.drop();
});

describe('AT mode on Postgres', () => {
  it('installs its triggers once, and refuses a table without a primary key or that does not exist', async () => {
    const again = await at.install(['accounts', 'ledger'], { installTriggers: true });
    expect(again).toEqual([
      { name: 'public.accounts', keyColumns: ['id'], installed: false },
      { name: 'public.ledger', keyColumns: ['id'], installed: false },
    ]);
    await dataSource.query(`CREATE TABLE keyless (x int)`);
    await expect(at.install(['keyless'], { installTriggers: true })).rejects.toThrow('AT table keyless has no primary key');
    await expect(at.install(['nowhere'], { installTriggers: true })).rejects.toThrow('AT table nowhere does not exist');
    await dataSource.query(`CREATE TABLE later (id int PRIMARY KEY)`);
    await expect(at.install(['later'], { installTriggers: false })).rejects.toThrow('have no (or out-of-date) capture triggers');
  });

  it('phase 1 commits the business change locally with its undo rows and locks, and answers the locks', async () => {
    await withAccounts(['a1', 100], ['a2', 5]);
    const outcome = await at.prepare(call('g-commit', 'prepare'), transfer('a1', 'a2', 30), WAIT);
    expect(outcome).toMatchObject({ kind: 'ok', result: { moved: 30 }, duplicate: false });
    expect(outcome.kind === 'ok' && outcome.locks?.count).toBe(4);
    expect(outcome.kind === 'ok' && outcome.locks?.rows.map((row) => `${row.table} ${row.key}`)).toEqual([
      'public.accounts ["a1"]',
      'public.accounts ["a2"]',
      expect.stringMatching(/^public\.ledger \[\d+\]$/),
      expect.stringMatching(/^public\.ledger \[\d+\]$/),
    ]);
    // Visible at once to a reader outside the global transaction (Seata's default isolation).
    expect(await balance('a1')).toBe(70);
    expect(await count('dtx_at_undo', 'g-commit')).toBe(4);
    // A duplicate prepare answers the stored result, and the locks as they are.
    const again = await at.prepare(call('g-commit', 'prepare'), transfer('a1', 'a2', 30), WAIT);
    expect(again).toMatchObject({ kind: 'ok', result: { moved: 30 }, duplicate: true, locks: { count: 4 } });
    expect(await balance('a1')).toBe(70);

    expect(await at.commit(call('g-commit', 'commit'))).toMatchObject({ kind: 'ok' });
    // Committed: the locks no longer hold, even before the clean-up deletes them.
    await dataSource.query(`UPDATE accounts SET balance = balance + 1 WHERE id = 'a1'`);
    expect(await at.deleteCommitted([{ gid: 'g-commit', branchId: 'b1' }])).toEqual({ undo: 4, locks: 4 });
    expect(await count('dtx_at_lock', 'g-commit')).toBe(0);
    expect(await balance('a1')).toBe(71);
  });

  it('rollback restores every table exactly, generated, identity, JSON and timestamp columns included', async () => {
    await withAccounts(['r1', 50], ['r2', 0]);
    const before = await snapshot();
    expect(await at.prepare(call('g-undo', 'prepare'), transfer('r1', 'r2', 50), WAIT)).toMatchObject({ kind: 'ok' });
    expect(await balance('r1')).toBe(0);
    expect(await at.rollback(call('g-undo', 'rollback'))).toMatchObject({ kind: 'ok', skipped: false });
    expect(await snapshot()).toEqual(before);
    expect(await count('dtx_at_undo', 'g-undo')).toBe(0);
    expect(await count('dtx_at_lock', 'g-undo')).toBe(0);
    // Idempotent; a repeated phase 1 only replays its first answer.
    expect(await at.rollback(call('g-undo', 'rollback'))).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await at.prepare(call('g-undo', 'prepare'), transfer('r1', 'r2', 50), WAIT)).toMatchObject({ kind: 'ok', duplicate: true });
    // A phase 1 that arrives after its rollback is refused (anti-hanging).
    expect(await at.rollback(call('g-hang', 'rollback'))).toMatchObject({ kind: 'ok', skipped: true });
    expect(await at.prepare(call('g-hang', 'prepare'), transfer('r1', 'r2', 50), WAIT)).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(await snapshot()).toEqual(before);
  });

  it('undoes raw SQL through pg as well: deletes, inserts, key changes and repeated updates, composite keys', async () => {
    await dataSource.query(`INSERT INTO pairs (a, b, note) VALUES (1, 'x', 'one'), (2, 'x', 'two'), (3, 'y', 'three')`);
    const before = await dataSource.query(`SELECT * FROM pairs ORDER BY b, a`);
    const outcome = await rawAt.prepare(
      call('g-raw', 'prepare'),
      async (client) => {
        await client.query(`DELETE FROM pairs WHERE a = 1`);
        await client.query(`INSERT INTO pairs (a, b, note) VALUES (4, 'z', 'four')`);
        await client.query(`UPDATE pairs SET note = note || '!' WHERE b = 'x'`);
        await client.query(`UPDATE pairs SET note = note || '?' WHERE b = 'x'`);
        await client.query(`UPDATE pairs SET a = 30 WHERE a = 3`);
        await client.query(`INSERT INTO pairs (a, b, note) VALUES (1, 'x', 'replaced')`);
      },
      WAIT,
    );
    expect(outcome).toMatchObject({ kind: 'ok', locks: { count: 5 } });
    expect(await rawAt.rollback(call('g-raw', 'rollback'))).toMatchObject({ kind: 'ok' });
    expect(await dataSource.query(`SELECT * FROM pairs ORDER BY b, a`)).toEqual(before);
  });

  it('a rollback whose phase 1 never ran changes nothing (null compensation); a failed phase 1 leaves nothing', async () => {
    await withAccounts(['n1', 10], ['n2', 10]);
    expect(await at.rollback(call('g-null', 'rollback'))).toMatchObject({ kind: 'ok', skipped: true, duplicate: false });
    expect(await at.prepare(call('g-poor', 'prepare'), transfer('n1', 'n2', 11), WAIT)).toMatchObject({ kind: 'failed', message: 'insufficient funds' });
    expect(await count('dtx_at_undo', 'g-poor')).toBe(0);
    expect(await count('dtx_at_lock', 'g-poor')).toBe(0);
    expect([await balance('n1'), await balance('n2')]).toEqual([10, 10]);
  });

  it('refuses a plain write, and a TRUNCATE, on a row a global transaction holds; other rows stay writable', async () => {
    await withAccounts(['p1', 10], ['p2', 10], ['p3', 10]);
    await at.prepare(call('g-plain', 'prepare'), transfer('p1', 'p2', 1), WAIT);
    await expect(dataSource.query(`UPDATE accounts SET balance = 0 WHERE id = 'p1'`)).rejects.toMatchObject({ driverError: { code: 'DXL02' } });
    await expect(dataSource.getRepository(Account).delete({ id: 'p2' })).rejects.toThrow(/dtx-at-row-locked: row \["p2"\] of public\.accounts is locked by global transaction g-plain/);
    await expect(dataSource.query(`TRUNCATE ledger`)).rejects.toThrow(/cannot be truncated now/);
    await dataSource.query(`UPDATE accounts SET balance = 11 WHERE id = 'p3'`);
    expect(await balance('p1')).toBe(9);
    await at.rollback(call('g-plain', 'rollback'));
    await dataSource.query(`UPDATE accounts SET balance = 0 WHERE id = 'p1'`);
    expect(await balance('p1')).toBe(0);
  });

  it('a second global transaction on a locked row waits, and proceeds once the first commits', async () => {
    await withAccounts(['w1', 100], ['w2', 0], ['w3', 0]);
    await at.prepare(call('g-first', 'prepare'), transfer('w1', 'w2', 10), WAIT);
    const startedAt = Date.now();
    const second = at.prepare(call('g-second', 'prepare'), transfer('w1', 'w3', 20), { lockWaitMs: 5_000 });
    await sleep(200);
    expect(await at.commit(call('g-first', 'commit'))).toMatchObject({ kind: 'ok' });
    expect(await second).toMatchObject({ kind: 'ok', result: { moved: 20 } });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(200);
    expect([await balance('w1'), await balance('w2'), await balance('w3')]).toEqual([70, 10, 20]);
    // The second one's rollback restores what it found: the first one's committed result.
    await at.rollback(call('g-second', 'rollback'));
    expect([await balance('w1'), await balance('w2'), await balance('w3')]).toEqual([90, 10, 0]);
  });

  it('a second global transaction on a locked row fails its phase 1 when the first holds it past the wait, changing nothing', async () => {
    await withAccounts(['f1', 100], ['f2', 0], ['f3', 0]);
    await at.prepare(call('g-holder', 'prepare'), transfer('f1', 'f2', 10), WAIT);
    const outcome = await at.prepare(call('g-late', 'prepare'), transfer('f1', 'f3', 20), { lockWaitMs: 250 });
    expect(outcome).toMatchObject({ kind: 'failed', details: { reason: 'at_lock_conflict' } });
    expect(outcome.kind === 'failed' && outcome.message).toMatch(/row \["f1"\] of public\.accounts is locked by global transaction g-holder .*still after 250 ms/);
    expect(await count('dtx_at_undo', 'g-late')).toBe(0);
    expect([await balance('f1'), await balance('f3')]).toEqual([90, 0]);
    // The failed one is rolled back by the coordinator: a null compensation.
    expect(await at.rollback(call('g-late', 'rollback'))).toMatchObject({ kind: 'ok', skipped: true });
    await at.rollback(call('g-holder', 'rollback'));
    expect([await balance('f1'), await balance('f2')]).toEqual([100, 0]);
  });

  it('refuses to overwrite a row changed behind the locks: nothing restored, locks kept, the difference reported', async () => {
    await withAccounts(['d1', 40], ['d2', 0]);
    await at.prepare(call('g-dirty', 'prepare'), transfer('d1', 'd2', 15), WAIT);
    // Something that bypasses the triggers (here: replication mode) changes a locked row.
    const client = await pool.connect();
    try {
      await client.query(`SET session_replication_role = replica`);
      await client.query(`UPDATE accounts SET balance = 99 WHERE id = 'd2'`);
      await client.query(`SET session_replication_role = DEFAULT`);
    } finally {
      client.release();
    }
    const outcome = await at.rollback(call('g-dirty', 'rollback'));
    expect(outcome).toMatchObject({
      kind: 'failed',
      details: { reason: 'at_dirty_row', table: 'public.accounts', key: '["d2"]', operation: 'update', expected: { balance: 15 }, found: { balance: 99 } },
    });
    expect([await balance('d1'), await balance('d2')]).toEqual([25, 99]);
    expect(await count('dtx_at_lock', 'g-dirty')).toBe(4);
    expect(await count('dtx_at_undo', 'g-dirty')).toBe(4);
    // Once an operator puts the row back as the branch left it, the rollback goes through.
    await pool.query(`SET session_replication_role = replica; UPDATE accounts SET balance = 15 WHERE id = 'd2'; SET session_replication_role = DEFAULT`);
    expect(await at.rollback(call('g-dirty', 'rollback'))).toMatchObject({ kind: 'ok' });
    expect([await balance('d1'), await balance('d2')]).toEqual([40, 0]);
  });

  it('one global transaction cannot change a row in two of its branches (their rollbacks could not be ordered)', async () => {
    await withAccounts(['s1', 10], ['s2', 10], ['s3', 10]);
    await at.prepare(call('g-same', 'prepare', 'b1'), transfer('s1', 's2', 1), WAIT);
    expect(await at.prepare(call('g-same', 'prepare', 'b2'), transfer('s1', 's3', 1), { lockWaitMs: 0 })).toMatchObject({
      kind: 'failed',
      details: { reason: 'at_lock_conflict' },
    });
    await at.rollback(call('g-same', 'rollback', 'b1'));
  });

  it('readUnlocked waits for the global transaction that holds a row, then reads its decided value', async () => {
    await withAccounts(['u1', 80], ['u2', 0]);
    await at.prepare(call('g-read', 'prepare'), transfer('u1', 'u2', 80), WAIT);
    const read = (manager: EntityManager) => manager.getRepository(Account).findOneByOrFail({ id: 'u1' });
    await expect(at.readUnlocked([{ table: 'accounts', key: { id: 'u1' } }], read, { waitMs: 100, forUpdate: false })).rejects.toBeInstanceOf(AtRowLockedError);
    const waiting = at.readUnlocked([{ table: 'accounts', key: { id: 'u1' } }], read, { waitMs: 5_000, forUpdate: true });
    await sleep(100);
    await at.rollback(call('g-read', 'rollback'));
    expect((await waiting).balance).toBe(80);
    // A row an AT branch deleted is waited for too: its rollback may bring it back.
    await at.prepare(call('g-gone', 'prepare'), async (m) => void (await m.getRepository(Account).delete({ id: 'u2' })), WAIT);
    await expect(at.readUnlocked([{ table: 'accounts', key: { id: 'u2' } }], (m) => m.getRepository(Account).findOneBy({ id: 'u2' }), { waitMs: 50, forUpdate: false })).rejects.toThrow(
      /row \["u2"\] of public\.accounts is locked by global transaction g-gone/,
    );
    await at.rollback(call('g-gone', 'rollback'));
    // A row nobody holds is read at once.
    expect((await at.readUnlocked([{ table: 'accounts', key: { id: 'u2' } }], (m) => m.getRepository(Account).findOneByOrFail({ id: 'u2' }), { waitMs: 0, forUpdate: false })).balance).toBe(0);
  });

  it('finds committed branches whose rows a crash left behind', async () => {
    await withAccounts(['c1', 10], ['c2', 10], ['c3', 10]);
    await at.prepare(call('g-left', 'prepare'), transfer('c1', 'c2', 1), WAIT);
    const open = await at.prepare(call('g-open', 'prepare'), async (m) => {
      await m.getRepository(Account).increment({ id: 'c3' }, 'balance', 0.5);
    }, WAIT);
    expect(open).toMatchObject({ kind: 'ok', locks: { count: 1 } });
    await at.commit(call('g-left', 'commit'));
    const leftovers = await at.committedLeftovers(100);
    expect(leftovers).toContainEqual({ gid: 'g-left', branchId: 'b1' });
    expect(leftovers.map((key) => key.gid)).not.toContain('g-open');
    await at.deleteCommitted(leftovers);
    expect(await count('dtx_at_undo', 'g-left')).toBe(0);
    expect(await count('dtx_at_undo', 'g-open')).toBe(1);
    await at.rollback(call('g-open', 'rollback'));
  });
});
