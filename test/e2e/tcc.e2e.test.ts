/**
 * End to end: the coordinator and two account services as real processes over real HTTP,
 * each with its own Postgres database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { CoordinatorError, TransactionClient } from '@nest-dtx/sdk';
import {
  accountService,
  accountsOf,
  coordinator,
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
let client: TransactionClient;

const FAST_RECOVERY = { RECOVERY_INTERVAL_MS: '200', RETRY_BASE_MS: '50', RETRY_MAX_MS: '500', LEASE_MS: '1500', CALL_TIMEOUT_MS: '700' };

const transfer = (from: string, to: string, amount: number) => [
  { participant: 'bank-a', action: 'debit', payload: { accountId: from, amount } },
  { participant: 'bank-b', action: 'credit', payload: { accountId: to, amount } },
];

const balanceOf = async (bank: AccountHandle, id: string) => {
  const summary = await accountsOf(bank);
  const account = summary.accounts.find((a) => a.id === id);
  if (!account) throw new Error(`no account ${id}`);
  return account;
};

const finished = (gid: string) =>
  until(`${gid} to finish`, async () => {
    const view = await client.get(gid);
    return view.status === 'committed' || view.status === 'rolled_back' ? view : undefined;
  }, 30_000, 100);

beforeAll(async () => {
  databases = await Promise.all(['e2e_coord', 'e2e_bank_a', 'e2e_bank_b'].map((p) => createTestDatabase(p)));
  coord = await coordinator('e2e-coordinator', databases[0].url, FAST_RECOVERY);
  await coord.start();
  bankA = await accountService('bank-a', databases[1].url, coord.url);
  bankB = await accountService('bank-b', databases[2].url, coord.url);
  await Promise.all([bankA.start(), bankB.start()]);
  client = new TransactionClient({ coordinatorUrl: coord.url });
});

afterAll(async () => {
  await Promise.all([bankA?.process.kill(), bankB?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('TCC one-shot', () => {
  it('commits a transfer: money leaves A and arrives at B exactly once', async () => {
    await openAccount(bankA, 'os-alice', 10_000);
    await openAccount(bankB, 'os-bob', 0);
    const view = await client.begin({ mode: 'tcc', gid: 'os-commit', wait: true, branches: transfer('os-alice', 'os-bob', 2_500) });
    expect(view.status).toBe('committed');
    expect(view.branches.map((b) => [b.branchId, b.status, b.attempts])).toEqual([
      ['b1', 'committed', 2],
      ['b2', 'committed', 2],
    ]);
    expect(view.branches[0].result).toEqual({ accountId: 'os-alice', frozen: 2_500 });
    expect(await balanceOf(bankA, 'os-alice')).toMatchObject({ balance: 7_500, frozen: 0 });
    expect(await balanceOf(bankB, 'os-bob')).toMatchObject({ balance: 2_500, frozen: 0 });
  });

  it('answers 201 with status committing without wait, and finishes phase 2 in the background', async () => {
    await openAccount(bankA, 'bg-alice', 1_000);
    await openAccount(bankB, 'bg-bob', 0);
    const { status, body } = await postJson<TransactionView>(`${coord.url}/v1/transactions`, {
      mode: 'tcc',
      gid: 'bg-commit',
      branches: transfer('bg-alice', 'bg-bob', 400),
    });
    expect(status).toBe(201);
    expect(['committing', 'committed']).toContain(body.status);
    expect((await finished('bg-commit')).status).toBe('committed');
    expect(await balanceOf(bankB, 'bg-bob')).toMatchObject({ balance: 400 });
  });

  it('rolls back on a business failure, keeps the refusal as lastError and leaves nothing frozen', async () => {
    await openAccount(bankA, 'poor', 100);
    await openAccount(bankB, 'rich', 0);
    const view = await client.begin({ mode: 'tcc', gid: 'os-refused', wait: true, branches: transfer('poor', 'rich', 5_000) });
    expect(view.status).toBe('rolled_back');
    expect(view.reason).toBe('branch_failed');
    const debit = view.branches.find((b) => b.branchId === 'b1');
    expect(debit?.status).toBe('rolled_back');
    expect(debit?.lastError).toMatchObject({ error: 'BUSINESS_FAILURE', details: { reason: 'insufficient_funds' } });
    expect(await balanceOf(bankA, 'poor')).toMatchObject({ balance: 100, frozen: 0 });
    expect(await balanceOf(bankB, 'rich')).toMatchObject({ balance: 0 });
    expect((await accountsOf(bankB)).pendingCredits).toBe(0);
  });

  it('treats the same gid and body as the same transaction (200), and a different body as 409 GID_CONFLICT', async () => {
    await openAccount(bankA, 'idem-a', 1_000);
    await openAccount(bankB, 'idem-b', 0);
    const body = { mode: 'tcc', gid: 'idem-1', wait: true, branches: transfer('idem-a', 'idem-b', 100) };
    const first = await postJson<TransactionView>(`${coord.url}/v1/transactions`, body);
    const second = await postJson<TransactionView>(`${coord.url}/v1/transactions`, body);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.gid).toBe('idem-1');
    expect(await balanceOf(bankB, 'idem-b')).toMatchObject({ balance: 100 });
    const conflict = await postJson<{ error: string }>(`${coord.url}/v1/transactions`, { ...body, branches: transfer('idem-a', 'idem-b', 200) });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toBe('GID_CONFLICT');
  });
});

describe('TCC interactive', () => {
  it('commits through the client callback form', async () => {
    await openAccount(bankA, 'cb-a', 1_000);
    await openAccount(bankB, 'cb-b', 0);
    const view = await client.tcc(async (tx) => {
      await tx.branch('bank-a', 'debit', { accountId: 'cb-a', amount: 300 });
      await tx.branch('bank-b', 'credit', { accountId: 'cb-b', amount: 300 });
    });
    expect(view.status).toBe('committed');
    expect(await balanceOf(bankA, 'cb-a')).toMatchObject({ balance: 700, frozen: 0 });
    expect(await balanceOf(bankB, 'cb-b')).toMatchObject({ balance: 300 });
  });

  it('answers 409 BRANCH_FAILED to a refused branch, and the callback form rolls back', async () => {
    await openAccount(bankA, 'cbf-a', 100);
    await openAccount(bankB, 'cbf-b', 0);
    let gid = '';
    const error = await client
      .tcc(async (tx) => {
        gid = tx.gid;
        await tx.branch('bank-b', 'credit', { accountId: 'cbf-b', amount: 500 });
        await tx.branch('bank-a', 'debit', { accountId: 'cbf-a', amount: 500 });
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CoordinatorError);
    expect((error as CoordinatorError).statusCode).toBe(409);
    expect((error as CoordinatorError).code).toBe('BRANCH_FAILED');
    const view = await finished(gid);
    expect(view).toMatchObject({ status: 'rolled_back', reason: 'client' });
    expect(await balanceOf(bankB, 'cbf-b')).toMatchObject({ balance: 0 });
    expect((await accountsOf(bankB)).pendingCredits).toBe(0);
  });

  it('returns the recorded outcome for a repeated branchId without calling the participant again', async () => {
    await openAccount(bankA, 'rep-a', 1_000);
    await client.begin({ mode: 'tcc', gid: 'rep-1' });
    const branch = { branchId: 'debit-1', participant: 'bank-a', action: 'debit', payload: { accountId: 'rep-a', amount: 100 } };
    const first = await client.addBranch('rep-1', branch);
    const second = await client.addBranch('rep-1', branch);
    expect(second).toEqual(first);
    expect((await client.get('rep-1')).branches[0].attempts).toBe(1);
    expect(await balanceOf(bankA, 'rep-a')).toMatchObject({ frozen: 100 });
    await client.rollback('rep-1', { wait: true });
    expect(await balanceOf(bankA, 'rep-a')).toMatchObject({ balance: 1_000, frozen: 0 });
  });

  it('commit with a failed branch rolls back and answers 409 CANNOT_COMMIT; a later commit is TX_ALREADY_DECIDED', async () => {
    await openAccount(bankA, 'cc-a', 10);
    await client.begin({ mode: 'tcc', gid: 'cc-1' });
    await client.addBranch('cc-1', { participant: 'bank-a', action: 'debit', payload: { accountId: 'cc-a', amount: 50 } }).catch(() => null);
    const commit = await postJson<{ error: string; transaction: TransactionView }>(`${coord.url}/v1/transactions/cc-1/commit`, {});
    expect(commit.status).toBe(409);
    expect(commit.body.error).toBe('CANNOT_COMMIT');
    expect(['rolling_back', 'rolled_back']).toContain(commit.body.transaction.status);
    await finished('cc-1');
    const again = await postJson<{ error: string }>(`${coord.url}/v1/transactions/cc-1/commit`, {});
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('TX_ALREADY_DECIDED');
    const rollback = await postJson<TransactionView>(`${coord.url}/v1/transactions/cc-1/rollback`, {});
    expect(rollback.status).toBe(200);
  });

  it('rolls back an active transaction at its deadline (reason timeout) and releases what try froze', async () => {
    await openAccount(bankA, 'to-a', 1_000);
    await client.begin({ mode: 'tcc', gid: 'timeout-1', timeoutMs: 800 });
    await client.addBranch('timeout-1', { participant: 'bank-a', action: 'debit', payload: { accountId: 'to-a', amount: 600 } });
    expect(await balanceOf(bankA, 'to-a')).toMatchObject({ frozen: 600 });
    const view = await finished('timeout-1');
    expect(view).toMatchObject({ status: 'rolled_back', reason: 'timeout' });
    expect(await balanceOf(bankA, 'to-a')).toMatchObject({ balance: 1_000, frozen: 0 });
    const late = await postJson<{ error: string }>(`${coord.url}/v1/transactions/timeout-1/branches`, {
      participant: 'bank-a',
      action: 'debit',
      payload: { accountId: 'to-a', amount: 1 },
    });
    expect(late.status).toBe(409);
    expect(late.body.error).toBe('TX_NOT_ACTIVE');
  });
});

describe('recovery', () => {
  it('finishes phase 2 after the coordinator is killed -9 between the commit decision and phase 2', async () => {
    await openAccount(bankA, 'crash-a', 5_000);
    await openAccount(bankB, 'crash-b', 0);
    await coord.process.kill();
    await coord.start({ DTX_TEST_CRASH_AT: 'after_decision', DTX_TEST_CRASH_GID_PREFIX: 'crash-' });
    const answer = await client
      .begin({ mode: 'tcc', gid: 'crash-1', wait: true, branches: transfer('crash-a', 'crash-b', 1_200) })
      .then(() => 'answered', () => 'no answer');
    expect(answer).toBe('no answer');
    expect(await coord.process.waitExit()).toBeNull(); // killed by SIGKILL, not exited
    // The decision is durable but phase 2 never ran: money is frozen at A, pending at B.
    expect(await balanceOf(bankA, 'crash-a')).toMatchObject({ balance: 5_000, frozen: 1_200 });
    await coord.start();
    const view = await finished('crash-1');
    expect(view.status).toBe('committed');
    expect(await balanceOf(bankA, 'crash-a')).toMatchObject({ balance: 3_800, frozen: 0 });
    expect(await balanceOf(bankB, 'crash-b')).toMatchObject({ balance: 1_200 });
  });

  it('retries confirm until a participant killed -9 after try comes back', async () => {
    await openAccount(bankA, 'pk-a', 2_000);
    await openAccount(bankB, 'pk-b', 0);
    await client.begin({ mode: 'tcc', gid: 'pk-1' });
    await client.addBranch('pk-1', { participant: 'bank-a', action: 'debit', payload: { accountId: 'pk-a', amount: 700 } });
    await client.addBranch('pk-1', { participant: 'bank-b', action: 'credit', payload: { accountId: 'pk-b', amount: 700 } });
    await bankB.process.kill('SIGKILL');
    expect((await client.commit('pk-1')).status).toBe('committing');
    await until('a failed confirm attempt', async () => {
      const view = await client.get('pk-1');
      const credit = view.branches.find((b) => b.participant === 'bank-b');
      return credit && credit.attempts >= 3 && credit.lastError !== null ? true : undefined;
    });
    expect((await client.get('pk-1')).status).toBe('committing');
    await bankB.start();
    expect((await finished('pk-1')).status).toBe('committed');
    expect(await balanceOf(bankB, 'pk-b')).toMatchObject({ balance: 700 });
    expect(await balanceOf(bankA, 'pk-a')).toMatchObject({ balance: 1_300, frozen: 0 });
  });
});

describe('API contract', () => {
  it('answers 400 naming the field for bad input, with stable codes', async () => {
    const cases: [unknown, string, string][] = [
      [{ mode: 'xa' }, 'VALIDATION_FAILED', 'mode'],
      [{ mode: 'tcc', gid: 'bad gid!' }, 'VALIDATION_FAILED', 'gid'],
      [{ mode: 'tcc', timeoutMs: -1 }, 'VALIDATION_FAILED', 'timeoutMs'],
      [{ mode: 'tcc', branches: [{ participant: 'bank-a' }] }, 'VALIDATION_FAILED', 'branches.0.action'],
      [{ mode: 'tcc', surprise: true }, 'VALIDATION_FAILED', 'surprise'],
      [{ mode: 'tcc', branches: [{ participant: 'nobody', action: 'debit' }] }, 'UNKNOWN_PARTICIPANT', 'branches.0.participant'],
      [{ mode: 'tcc', branches: [{ participant: 'bank-a', action: 'steal' }] }, 'UNKNOWN_ACTION', 'branches.0.action'],
      [{ mode: 'saga', branches: [{ participant: 'bank-a', action: 'debit' }] }, 'VALIDATION_FAILED', 'branches'],
      [{ mode: 'saga' }, 'VALIDATION_FAILED', 'steps'],
      [{ mode: 'tcc', steps: [{ name: 's', participant: 'bank-a', action: 'debit' }] }, 'VALIDATION_FAILED', 'steps'],
    ];
    for (const [body, code, field] of cases) {
      const { status, body: answer } = await postJson<{ statusCode: number; error: string; field: string }>(`${coord.url}/v1/transactions`, body);
      expect({ status, code: answer.error, field: answer.field }).toEqual({ status: 400, code, field });
    }
    const notJson = await fetch(`${coord.url}/v1/transactions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: string }).error).toBe('INVALID_JSON');
    const missing = await fetch(`${coord.url}/v1/transactions/no-such-gid`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe('TX_NOT_FOUND');
  });

});
