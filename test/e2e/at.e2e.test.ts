/**
 * End to end, AT mode: the coordinator and two account services as real processes over real
 * HTTP, each with its own Postgres database. The transfers' branches are the account service's
 * `at-debit` and `at-credit`, written as plain TypeORM repository calls with no compensation
 * code: the SDK's triggers record how to undo them and lock the rows they change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  accountService,
  coordinator,
  finished,
  getJson,
  killCoordinatorAt,
  openAccount,
  postJson,
  until,
  type AccountHandle,
  type CoordinatorHandle,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bankA: AccountHandle;
let bankB: AccountHandle;
let poolA: pg.Pool;
let poolB: pg.Pool;
let client: TransactionClient;

const FAST_RECOVERY = { RECOVERY_INTERVAL_MS: '200', RETRY_BASE_MS: '50', RETRY_MAX_MS: '500', LEASE_MS: '4000', CALL_TIMEOUT_MS: '2000' };
/** Bank A's wait for a held row: long enough for a test to commit the holder meanwhile. */
const BANK_A_LOCK_WAIT_MS = 1_500;

const debit = (accountId: string, amount: number) => ({ participant: 'bank-a', action: 'at-debit', payload: { accountId, amount } });
const credit = (accountId: string, amount: number) => ({ participant: 'bank-b', action: 'at-credit', payload: { accountId, amount } });
const transfer = (from: string, to: string, amount: number) => [debit(from, amount), credit(to, amount)];

/** An account's whole row, as the bank's database has it. */
async function row(pool: pg.Pool, id: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await pool.query<{ row: Record<string, unknown> }>(`SELECT to_jsonb(a) AS row FROM accounts a WHERE id = $1`, [id]);
  return rows[0]?.row;
}

async function balance(pool: pg.Pool, id: string): Promise<number> {
  return Number((await row(pool, id))?.balance);
}

/** Undo and lock rows left for a transaction in a bank's database. */
async function atRows(pool: pg.Pool, gid: string): Promise<{ undo: number; locks: number }> {
  const { rows } = await pool.query<{ undo: number; locks: number }>(
    `SELECT (SELECT count(*)::int FROM dtx_at_undo WHERE gid = $1) AS undo, (SELECT count(*)::int FROM dtx_at_lock WHERE gid = $1) AS locks`,
    [gid],
  );
  return rows[0];
}

/** Waits for the participants' batched clean-up to have deleted a committed transaction's rows. */
const cleanedUp = (gid: string) =>
  until(`${gid}'s undo and lock rows to go`, async () => {
    const [a, b] = await Promise.all([atRows(poolA, gid), atRows(poolB, gid)]);
    return a.undo + a.locks + b.undo + b.locks === 0 ? true : undefined;
  }, 15_000, 100);

/** Begins an interactive 2PC transaction and adds one AT branch: its prepare runs, and it holds its rows until decided. */
async function holdWith(gid: string, branch: ReturnType<typeof debit>): Promise<void> {
  const begun = await postJson(`${coord.url}/v1/transactions`, { mode: '2pc', gid, timeoutMs: 60_000 });
  expect(begun.status).toBe(201);
  const added = await postJson<{ status: string }>(`${coord.url}/v1/transactions/${gid}/branches`, { branchId: 'b1', ...branch });
  expect(added.status).toBe(201);
}

beforeAll(async () => {
  databases = await Promise.all(['e2e_at_coord', 'e2e_at_bank_a', 'e2e_at_bank_b'].map((p) => createTestDatabase(p)));
  coord = await coordinator('at-coordinator', databases[0].url, FAST_RECOVERY);
  await coord.start();
  bankA = await accountService('bank-a', databases[1].url, coord.url);
  bankB = await accountService('bank-b', databases[2].url, coord.url);
  bankA.process.env.AT_LOCK_WAIT_MS = String(BANK_A_LOCK_WAIT_MS);
  await Promise.all([bankA.start(), bankB.start()]);
  poolA = new pg.Pool({ connectionString: databases[1].url, max: 2 });
  poolB = new pg.Pool({ connectionString: databases[2].url, max: 2 });
  client = new TransactionClient({ coordinatorUrl: coord.url, timeoutMs: 30_000 });
});

afterAll(async () => {
  await Promise.all([poolA?.end(), poolB?.end()]);
  await Promise.all([bankA?.process.kill(), bankB?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('AT transfers', () => {
  it('commits a transfer: the money moves once, and the undo and lock rows go', async () => {
    await openAccount(bankA, 'c-alice', 10_000);
    await openAccount(bankB, 'c-bob', 500);
    const view = await client.begin({ mode: '2pc', gid: 'at-commit', wait: true, branches: transfer('c-alice', 'c-bob', 2_500) });
    expect(view.status).toBe('committed');
    expect(view.branches.map((b) => [b.action, b.status, b.result])).toEqual([
      ['at-debit', 'committed', { accountId: 'c-alice', debited: 2_500 }],
      ['at-credit', 'committed', { accountId: 'c-bob', credited: 2_500 }],
    ]);
    expect([await balance(poolA, 'c-alice'), await balance(poolB, 'c-bob')]).toEqual([7_500, 3_000]);
    await cleanedUp('at-commit');
  });

  it('rolls back exactly: a refused credit undoes the debit that had committed locally', async () => {
    await openAccount(bankA, 'r-alice', 4_000);
    const before = await row(poolA, 'r-alice');
    const view = await client.begin({ mode: '2pc', gid: 'at-refused', wait: true, branches: transfer('r-alice', 'nobody', 1_000) });
    expect(view.status).toBe('rolled_back');
    expect(view.reason).toBe('branch_failed');
    expect(view.branches.find((b) => b.action === 'at-credit')?.lastError).toMatchObject({ details: { reason: 'no_account' } });
    expect(await row(poolA, 'r-alice')).toEqual(before);
    expect([await atRows(poolA, 'at-refused'), await atRows(poolB, 'at-refused')]).toEqual([
      { undo: 0, locks: 0 },
      { undo: 0, locks: 0 },
    ]);
  });

  it('a second transaction on a held row waits, then fails cleanly; a plain write to it is refused with 409', async () => {
    await openAccount(bankA, 'h-alice', 5_000);
    await openAccount(bankB, 'h-bob', 0);
    await holdWith('at-holder', debit('h-alice', 1_000));
    expect(await balance(poolA, 'h-alice')).toBe(4_000);
    const plain = await postJson<{ message: string }>(`${bankA.url}/accounts`, { id: 'h-alice', balance: 1 });
    expect(plain.status).toBe(409);
    expect(plain.body.message).toContain('held by a global transaction');

    const second = await client.begin({ mode: '2pc', gid: 'at-blocked', wait: true, branches: transfer('h-alice', 'h-bob', 500) });
    expect(second.status).toBe('rolled_back');
    expect(second.branches.find((b) => b.action === 'at-debit')?.lastError).toMatchObject({ details: { reason: 'at_lock_conflict' } });
    expect(await balance(poolB, 'h-bob')).toBe(0);

    const rolledBack = await postJson<TransactionView>(`${coord.url}/v1/transactions/at-holder/rollback`, {});
    expect(rolledBack.status).toBe(200);
    await finished(client, 'at-holder');
    expect(await balance(poolA, 'h-alice')).toBe(5_000);
    // Released: the plain write goes through now.
    expect((await postJson(`${bankA.url}/accounts`, { id: 'h-alice', balance: 5_000 })).status).toBe(201);
  });

  it('a second transaction on a held row proceeds once the holder commits within its wait', async () => {
    await openAccount(bankA, 'p-alice', 5_000);
    await openAccount(bankB, 'p-bob', 0);
    await holdWith('at-first', debit('p-alice', 1_000));
    const second = client.begin({ mode: '2pc', gid: 'at-second', wait: true, branches: transfer('p-alice', 'p-bob', 3_000) });
    // The second one's debit is retrying on the held row meanwhile; commit the holder.
    await until('the second transaction to be calling bank A', async () => ((await client.get('at-second').catch(() => null)) ? true : undefined), 5_000, 20);
    const committed = await postJson<TransactionView>(`${coord.url}/v1/transactions/at-first/commit`, {});
    expect(committed.status).toBe(200);
    const view = await second;
    expect(view.status).toBe('committed');
    expect([await balance(poolA, 'p-alice'), await balance(poolB, 'p-bob')]).toEqual([1_000, 3_000]);
  });

  it('survives the participant dying between its local commit and its answer: the transaction ends consistent', async () => {
    await openAccount(bankA, 'k-alice', 6_000);
    await openAccount(bankB, 'k-bob', 100);
    const [aBefore, bBefore] = [await row(poolA, 'k-alice'), await row(poolB, 'k-bob')];
    await bankB.process.kill();
    await bankB.start({ CRASH_AFTER_PHASE: 'at-credit/prepare' });
    const begin = client.begin({ mode: '2pc', gid: 'at-crash-participant', branches: transfer('k-alice', 'k-bob', 1_000) }).catch(() => null);
    expect(await bankB.process.waitExit()).toBeNull();
    // Its local transaction committed: the credit is there, undo and lock rows with it.
    expect(await balance(poolB, 'k-bob')).toBe(1_100);
    await bankB.start();
    await begin;
    const view = await finished(client, 'at-crash-participant');
    // No answer from bank B reached the coordinator: phase 1 failed, so it rolled back; bank B's
    // rollback found the prepare that did commit and undid it.
    expect(view.status).toBe('rolled_back');
    expect([await row(poolA, 'k-alice'), await row(poolB, 'k-bob')]).toEqual([aBefore, bBefore]);
    expect([await atRows(poolA, 'at-crash-participant'), await atRows(poolB, 'at-crash-participant')]).toEqual([
      { undo: 0, locks: 0 },
      { undo: 0, locks: 0 },
    ]);
  });

  it('survives the coordinator dying after the commit decision: the restarted one finishes it', async () => {
    await openAccount(bankA, 'd-alice', 3_000);
    await openAccount(bankB, 'd-bob', 0);
    const view = await killCoordinatorAt(coord, client, 'at-crash-coordinator', 'after_decision', () =>
      client.begin({ mode: '2pc', gid: 'at-crash-coordinator', wait: true, branches: transfer('d-alice', 'd-bob', 1_200) }),
    );
    expect(view.status).toBe('committed');
    expect([await balance(poolA, 'd-alice'), await balance(poolB, 'd-bob')]).toEqual([1_800, 1_200]);
    await cleanedUp('at-crash-coordinator');
    // Every transfer of this file ended, and no bank keeps a lock for any of them.
    const held = await Promise.all([poolA, poolB].map(async (pool) => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM dtx_at_lock l WHERE NOT EXISTS (SELECT 1 FROM dtx_barrier b WHERE b.gid = l.gid AND b.branch_id = l.branch_id AND b.phase = 'commit')`)).rows[0].n));
    expect(held).toEqual([0, 0]);
  });

  it('registers the AT actions as 2PC actions', async () => {
    const participants = await getJson<{ name: string; actions: { name: string; modes: string[] }[] }[]>(`${coord.url}/v1/participants`);
    const bank = participants.find((p) => p.name === 'bank-a');
    expect(bank?.actions).toEqual(expect.arrayContaining([{ name: 'at-debit', modes: ['2pc'] }, { name: 'at-credit', modes: ['2pc'] }]));
  });
});
