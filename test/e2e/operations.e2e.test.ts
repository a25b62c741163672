/** Health and metrics endpoints of a real coordinator (with Redis), after real transactions. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransactionClient } from '@nest-dtx/sdk';
import { REDIS_URL, accountService, coordinator, openAccount, type CoordinatorHandle, type ServiceHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;

beforeAll(async () => {
  databases = await Promise.all(['ops_coord', 'ops_bank'].map((p) => createTestDatabase(p)));
  coord = await coordinator('ops-coordinator', databases[0].url, { REDIS_URL });
  await coord.start();
  bank = await accountService('bank', databases[1].url, coord.url);
  await bank.start();
  await openAccount(bank, 'ops', 1_000);
  const client = new TransactionClient({ coordinatorUrl: coord.url });
  const debit = (amount: number) => [{ participant: 'bank', action: 'debit', payload: { accountId: 'ops', amount } }];
  await client.begin({ mode: 'tcc', wait: true, branches: debit(10) });
  await client.begin({ mode: 'tcc', wait: true, branches: debit(1_000_000) });
  await client.begin({ mode: 'saga', wait: true, steps: [{ name: 's', ...debit(5)[0] }] });
  await client.begin({ mode: 'tcc' });
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('health', () => {
  it('is live, and ready when Postgres and Redis answer', async () => {
    const live = await fetch(`${coord.url}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${coord.url}/health/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; details: Record<string, { status: string }> };
    expect(body.status).toBe('ok');
    expect(body.details.database.status).toBe('up');
    expect(body.details.redis.status).toBe('up');
  });
});

describe('metrics', () => {
  it('exposes transactions, phase calls, and what is in doubt, in the Prometheus format', async () => {
    const response = await fetch(`${coord.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const value = (line: string) => {
      const found = text.split('\n').find((l) => l.startsWith(line));
      return found === undefined ? undefined : Number(found.slice(line.length).trim());
    };
    expect(value('dtx_transactions_begun_total{mode="tcc"}')).toBe(3);
    expect(value('dtx_transactions_begun_total{mode="saga"}')).toBe(1);
    expect(value('dtx_transactions_finished_total{mode="tcc",status="committed",reason=""}')).toBe(1);
    expect(value('dtx_transactions_finished_total{mode="tcc",status="rolled_back",reason="branch_failed"}')).toBe(1);
    expect(value('dtx_transactions_finished_total{mode="saga",status="committed",reason=""}')).toBe(1);
    expect(value('dtx_phase_call_duration_seconds_count{participant="bank",phase="try",outcome="ok"}')).toBe(1);
    expect(value('dtx_phase_call_duration_seconds_count{participant="bank",phase="try",outcome="failed"}')).toBe(1);
    expect(value('dtx_transactions_in_doubt{status="active"}')).toBe(1);
    expect(value('dtx_transactions_in_doubt{status="committing"}')).toBe(0);
    expect(value('dtx_transactions_needing_attention')).toBe(0);
    expect(text).toContain('dtx_recovery_lag_seconds');
    expect(text).toContain('dtx_process_cpu_user_seconds_total');
  });
});

describe('without its Redis', () => {
  it('stays live, reports not ready (503 NOT_READY naming redis), and still commits transactions', async () => {
    const db = await createTestDatabase('ops_noredis');
    const lonely = await coordinator('ops-no-redis', db.url, { REDIS_URL: 'redis://127.0.0.1:1', WAIT_POLL_MS: '200' });
    try {
      await lonely.start();
      expect((await fetch(`${lonely.url}/health/live`)).status).toBe(200);
      const ready = await fetch(`${lonely.url}/health/ready`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { error: string; details: Record<string, { status: string }> };
      expect(body.error).toBe('NOT_READY');
      expect(body.details.redis.status).toBe('down');
      expect(body.details.database.status).toBe('up');
      // The outcome never depends on Redis: a waiting client is answered by polling the store.
      const client = new TransactionClient({ coordinatorUrl: lonely.url });
      await client.begin({ mode: 'tcc', gid: 'no-redis-1' });
      expect((await client.commit('no-redis-1', { wait: true })).status).toBe('committed');
    } finally {
      await lonely.process.kill();
      await db.drop();
    }
  });
});
