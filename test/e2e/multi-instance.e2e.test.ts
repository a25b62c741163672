/**
 * Two coordinator instances sharing one Postgres and one Redis, as real processes: a wait on
 * one instance is answered when the other finishes, a transaction left by a killed instance is
 * finished by the survivor, and traffic spread over both ends consistent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  REDIS_URL,
  accountService,
  accountsOf,
  coordinator,
  openAccount,
  postJson,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let a: CoordinatorHandle;
let b: CoordinatorHandle;
let bankA: ServiceHandle;
let bankB: ServiceHandle;
let viaA: TransactionClient;
let viaB: TransactionClient;

// Waits never poll within a test's time: only the Redis bus can wake them.
const SHARED = { REDIS_URL, WAIT_POLL_MS: '600000', RECOVERY_INTERVAL_MS: '200', RETRY_BASE_MS: '50', RETRY_MAX_MS: '500', LEASE_MS: '2000', CALL_TIMEOUT_MS: '1000' };

const transfer = (from: string, to: string, amount: number) => [
  { participant: 'bank-a', action: 'debit', payload: { accountId: from, amount } },
  { participant: 'bank-b', action: 'credit', payload: { accountId: to, amount } },
];

beforeAll(async () => {
  databases = await Promise.all(['multi_coord', 'multi_a', 'multi_b'].map((p) => createTestDatabase(p)));
  a = await coordinator('instance-a', databases[0].url, SHARED);
  b = await coordinator('instance-b', databases[0].url, SHARED);
  await a.start();
  await b.start();
  bankA = await accountService('bank-a', databases[1].url, a.url);
  bankB = await accountService('bank-b', databases[2].url, b.url);
  await Promise.all([bankA.start(), bankB.start()]);
  viaA = new TransactionClient({ coordinatorUrl: a.url });
  viaB = new TransactionClient({ coordinatorUrl: b.url });
});

afterAll(async () => {
  await Promise.all([bankA?.process.kill(), bankB?.process.kill(), a?.process.kill(), b?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('several coordinator instances', () => {
  it('answers a wait on instance A as soon as instance B finishes the transaction (Redis bus)', async () => {
    await openAccount(bankA, 'w-a', 1_000);
    await openAccount(bankB, 'w-b', 0);
    const begin = { mode: 'tcc', gid: 'multi-wait' };
    await postJson(`${a.url}/v1/transactions`, begin);
    await viaA.addBranch('multi-wait', transfer('w-a', 'w-b', 100)[0]);
    await viaA.addBranch('multi-wait', transfer('w-a', 'w-b', 100)[1]);
    // The same begin again with wait: A holds the request until the transaction ends.
    const waiting = postJson<TransactionView>(`${a.url}/v1/transactions`, { ...begin, wait: true });
    await new Promise((r) => setTimeout(r, 300));
    const committed = await viaB.commit('multi-wait', { wait: true });
    expect(committed.status).toBe('committed');
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('committed');
  });

  it('finishes on instance B what instance A decided before it was killed -9', async () => {
    await openAccount(bankA, 'k-a', 1_000);
    await openAccount(bankB, 'k-b', 0);
    await a.process.kill();
    await a.start({ DTX_TEST_CRASH_AT: 'after_decision', DTX_TEST_CRASH_GID_PREFIX: 'multi-kill' });
    const answer = await viaA.begin({ mode: 'tcc', gid: 'multi-kill-1', wait: true, branches: transfer('k-a', 'k-b', 300) }).then(
      () => 'answered',
      () => 'no answer',
    );
    expect(answer).toBe('no answer');
    expect(await a.process.waitExit()).toBeNull();
    // A stays dead: B's recovery claims the transaction once A's lease has run out.
    const view = await until('B to finish it', async () => {
      const v = await viaB.get('multi-kill-1');
      return v.status === 'committed' ? v : undefined;
    }, 30_000, 100);
    expect(view.status).toBe('committed');
    const accounts = [...(await accountsOf(bankA)).accounts, ...(await accountsOf(bankB)).accounts];
    expect(accounts.find((x) => x.id === 'k-a')).toMatchObject({ balance: 700, frozen: 0 });
    expect(accounts.find((x) => x.id === 'k-b')).toMatchObject({ balance: 300 });
    await a.start();
  });

  it('keeps money exact under traffic spread over both instances', async () => {
    await openAccount(bankA, 'spread-a', 100_000);
    await openAccount(bankB, 'spread-b', 0);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 === 0 ? viaA : viaB).begin({ mode: 'tcc', gid: `spread-${i}`, wait: true, branches: transfer('spread-a', 'spread-b', 10) }),
      ),
    );
    // With CALL_TIMEOUT_MS at 1 s, a loaded machine can time a try out, and that transfer rolls
    // back: what must hold is that every transfer ended and the money moved by the committed ones only.
    expect(results.map((r) => r.status).filter((s) => s !== 'committed' && s !== 'rolled_back')).toEqual([]);
    const committed = results.filter((r) => r.status === 'committed').length;
    expect(committed).toBeGreaterThan(0);
    const payer = (await accountsOf(bankA)).accounts.find((x) => x.id === 'spread-a');
    const payee = (await accountsOf(bankB)).accounts.find((x) => x.id === 'spread-b');
    expect(payer).toMatchObject({ balance: 100_000 - 10 * committed, frozen: 0 });
    expect(payee).toMatchObject({ balance: 10 * committed });
  });
});
