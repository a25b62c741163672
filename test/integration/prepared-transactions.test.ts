/**
 * The XA helper against a real Postgres: prepare leaves a real prepared transaction; commit and
 * rollback are idempotent; a rollback first makes a late prepare refuse; a restarted participant
 * finds its prepared transactions and leaves them for the coordinator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource, type EntityManager } from 'typeorm';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import { BusinessFailure, PreparedTransactions, dtxMigrations } from '@nest-dtx/sdk';
import { typeormDataLayer } from '@nest-dtx/sdk/typeorm';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';

const PARTICIPANT = 'shop';
let db: TestDatabase;
let dataSource: DataSource;
let xa: PreparedTransactions<EntityManager>;
let businessRuns = 0;

const call = (gid: string, phase: 'prepare' | 'commit' | 'rollback'): PhaseCallBody => ({ gid, branchId: 'b1', mode: '2pc', action: 'sell', phase, payload: {} });

const sell = (sku: string) => async (manager: EntityManager) => {
  businessRuns++;
  await manager.query(`UPDATE stock SET qty = qty - 1 WHERE sku = $1`, [sku]);
  return { sold: sku };
};

async function qty(sku: string): Promise<number> {
  const rows: { qty: number }[] = await dataSource.query(`SELECT qty FROM stock WHERE sku = $1`, [sku]);
  return rows[0].qty;
}

async function prepared(): Promise<string[]> {
  const rows: { gid: string }[] = await dataSource.query(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`);
  return rows.map((r) => r.gid);
}

const xid = (gid: string) => PreparedTransactions.xidFor(PARTICIPANT, gid, 'b1');

async function withSku(sku: string): Promise<void> {
  await dataSource.query(`INSERT INTO stock (sku, qty) VALUES ($1, 10)`, [sku]);
}

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('xa', [`CREATE TABLE stock (sku text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0))`]));
  const settings: { max_prepared_transactions: string }[] = await dataSource.query(`SHOW max_prepared_transactions`);
  const max = settings[0]?.max_prepared_transactions;
  if (Number(max) === 0) throw new Error('this Postgres has max_prepared_transactions = 0: unset TEST_DATABASE_URL to let the tests start their own (test/support/global-setup.ts), or enable them there');
  xa = new PreparedTransactions<EntityManager>(typeormDataLayer(dataSource));
});

afterAll(async () => {
  // A database with prepared transactions cannot be dropped.
  for (const gid of (await prepared().catch(() => []))) await dataSource.query(`ROLLBACK PREPARED '${gid}'`);
  await dataSource?.destroy();
  await db?.drop();
});

describe('PreparedTransactions', () => {
  it('prepare leaves a prepared transaction whose change is invisible until COMMIT PREPARED; commit is idempotent', async () => {
    await withSku('p1');
    expect(await xa.prepare(PARTICIPANT, call('g1', 'prepare'), sell('p1'))).toEqual({ kind: 'ok', result: { sold: 'p1' }, duplicate: false, skipped: false });
    expect(await prepared()).toContain(xid('g1'));
    expect(await qty('p1')).toBe(10);
    expect(await xa.commit(PARTICIPANT, call('g1', 'commit'))).toMatchObject({ kind: 'ok' });
    expect(await prepared()).not.toContain(xid('g1'));
    expect(await qty('p1')).toBe(9);
    expect(await xa.commit(PARTICIPANT, call('g1', 'commit'))).toMatchObject({ kind: 'ok' });
    expect(await qty('p1')).toBe(9);
  });

  it('rollback discards the prepared change; a repeated rollback is success', async () => {
    await withSku('p2');
    await xa.prepare(PARTICIPANT, call('g2', 'prepare'), sell('p2'));
    await xa.rollback(PARTICIPANT, call('g2', 'rollback'));
    expect(await xa.rollback(PARTICIPANT, call('g2', 'rollback'))).toMatchObject({ kind: 'ok' });
    expect(await prepared()).not.toContain(xid('g2'));
    expect(await qty('p2')).toBe(10);
    // The rollback left the marker: the same prepare again refuses.
    expect(await xa.prepare(PARTICIPANT, call('g2', 'prepare'), sell('p2'))).toMatchObject({ kind: 'failed' });
  });

  it('a duplicate prepare, while prepared or after the commit, does not run the business again', async () => {
    await withSku('p3');
    const before = businessRuns;
    await xa.prepare(PARTICIPANT, call('g3', 'prepare'), sell('p3'));
    expect(await xa.prepare(PARTICIPANT, call('g3', 'prepare'), sell('p3'))).toMatchObject({ kind: 'ok', duplicate: true });
    await xa.commit(PARTICIPANT, call('g3', 'commit'));
    expect(await xa.prepare(PARTICIPANT, call('g3', 'prepare'), sell('p3'))).toMatchObject({ kind: 'ok', duplicate: true });
    expect(businessRuns - before).toBe(1);
    expect(await qty('p3')).toBe(9);
  });

  it('a rollback before its prepare is a null compensation, and the late prepare refuses without running', async () => {
    await withSku('p4');
    const before = businessRuns;
    expect(await xa.rollback(PARTICIPANT, call('g4', 'rollback'))).toMatchObject({ kind: 'ok' });
    expect(await xa.prepare(PARTICIPANT, call('g4', 'prepare'), sell('p4'))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(businessRuns).toBe(before);
    expect(await prepared()).not.toContain(xid('g4'));
  });

  it('commit of a branch that was never prepared is success and changes nothing', async () => {
    await withSku('p5');
    expect(await xa.commit(PARTICIPANT, call('g5', 'commit'))).toMatchObject({ kind: 'ok' });
    expect(await qty('p5')).toBe(10);
  });

  it('a business failure in prepare leaves neither a prepared transaction nor a barrier row', async () => {
    const refused = await xa.prepare(PARTICIPANT, call('g6', 'prepare'), () => Promise.reject(new BusinessFailure('sold out', { reason: 'out_of_stock' })));
    expect(refused).toEqual({ kind: 'failed', message: 'sold out', details: { reason: 'out_of_stock' } });
    expect(await prepared()).not.toContain(xid('g6'));
    expect(await dataSource.query(`SELECT 1 FROM dtx_barrier WHERE gid = 'g6'`)).toHaveLength(0);
  });

  it('after a restart the participant lists its prepared transactions, leaves them alone, and commits when told', async () => {
    await withSku('p7');
    await xa.prepare(PARTICIPANT, call('g7', 'prepare'), sell('p7'));
    // The process goes away: its pool closes; the prepared transaction survives it.
    await dataSource.destroy();
    dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: [...dtxMigrations] });
    await dataSource.initialize();
    xa = new PreparedTransactions<EntityManager>(typeormDataLayer(dataSource));
    expect(await xa.listOwn(PARTICIPANT)).toContain(xid('g7'));
    expect(await xa.listOwn('someone-else')).toEqual([]);
    expect(await prepared()).toContain(xid('g7'));
    expect(await qty('p7')).toBe(10);
    await xa.commit(PARTICIPANT, call('g7', 'commit'));
    expect(await qty('p7')).toBe(9);
  });

  it('a rollback racing a prepare that is still running ends with nothing prepared and nothing applied', async () => {
    await withSku('p8');
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const preparing = xa.prepare(PARTICIPANT, call('g8', 'prepare'), async (manager) => {
      await manager.query(`UPDATE stock SET qty = qty - 1 WHERE sku = 'p8'`);
      await gate;
      return null;
    });
    await new Promise((r) => setTimeout(r, 100));
    const rollingBack = xa.rollback(PARTICIPANT, call('g8', 'rollback')).then(() => 'ok', () => 'error');
    await new Promise((r) => setTimeout(r, 100));
    release();
    await preparing;
    // The first rollback either waited for the prepare and finished it, or timed out: retry as the coordinator would.
    let outcome = await rollingBack;
    for (let i = 0; outcome !== 'ok' || (await prepared()).includes(xid('g8')); i++) {
      expect(i).toBeLessThan(5);
      outcome = await xa.rollback(PARTICIPANT, call('g8', 'rollback')).then(() => 'ok', () => 'error');
    }
    expect(await prepared()).not.toContain(xid('g8'));
    expect(await qty('p8')).toBe(10);
    expect(await xa.prepare(PARTICIPANT, call('g8', 'prepare'), sell('p8'))).toMatchObject({ kind: 'failed' });
  });
});
