/**
 * Two coordinator instances lose their Redis (kill -9) and get it back: outcomes do not change,
 * a cross-instance wait falls back to polling the store, the loss is logged and readiness says
 * so, and once Redis is back both instances are subscribed to the change channel again.
 */
import { readFileSync, statSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { TX_EVENTS_CHANNEL } from '../../apps/coordinator/src/bus/tx-event-bus.js';
import { ManagedProcess, coordinator, freePort, postJson, sleep, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let database: TestDatabase;
let redis: ManagedProcess;
let redisUrl: string;
let a: CoordinatorHandle;
let b: CoordinatorHandle;

/** How many instances listen on the change channel (PUBSUB NUMSUB), asked of the private Redis. */
async function subscribers(): Promise<number> {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined); // a refused connection rejects connect() below
  try {
    await client.connect();
    const answer = (await client.pubsub('NUMSUB', TX_EVENTS_CHANNEL)) as [string, number];
    return Number(answer[1]);
  } finally {
    client.disconnect();
  }
}

beforeAll(async () => {
  database = await createTestDatabase('redis_loss');
  const port = await freePort();
  redisUrl = `redis://127.0.0.1:${port}`;
  redis = new ManagedProcess('redis-loss-redis', '', {}, {
    program: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  });
  redis.start();
  await until('the private Redis', async () => ((await subscribers()) >= 0 ? true : undefined));
  // Waits re-read the store every 300 ms: the fallback when bus messages are lost.
  const env = { REDIS_URL: redisUrl, WAIT_POLL_MS: '300', WAIT_MAX_MS: '60000' };
  a = await coordinator('redis-loss-a', database.url, env);
  b = await coordinator('redis-loss-b', database.url, env);
  await a.start();
  await b.start();
  await until('both instances to subscribe', async () => ((await subscribers()) === 2 ? true : undefined));
});

afterAll(async () => {
  await Promise.all([a?.process.kill(), b?.process.kill(), redis?.kill('SIGKILL')]);
  await database?.drop();
});

describe('losing Redis', () => {
  it('changes no outcome: a wait on A for what B commits is answered from the store, and the loss is logged and reported', async () => {
    // The log file is appended to across runs: only what A writes from now on counts.
    const logFrom = statSync(a.process.logFile).size;
    await redis.kill('SIGKILL');
    const gid = 'redis-loss-1';
    const begin = { mode: 'tcc', gid };
    expect((await postJson(`${a.url}/v1/transactions`, begin)).status).toBe(201);
    const waiting = postJson<TransactionView>(`${a.url}/v1/transactions`, { ...begin, wait: true });
    await sleep(300);
    const committed = await new TransactionClient({ coordinatorUrl: b.url }).commit(gid, { wait: true });
    expect(committed.status).toBe('committed');
    const answer = await waiting;
    expect(answer.body.status).toBe('committed');

    const ready = await fetch(`${a.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: string }).error).toBe('NOT_READY');
    const loggedSince = () => readFileSync(a.process.logFile).subarray(logFrom).toString('utf8');
    await until('A to log the lost Redis', () => Promise.resolve(/"level":"warn"[^\n]*redis/i.test(loggedSince()) ? true : undefined));
  });

  it('comes back by itself: both instances subscribe again, report ready, and a wait on A ends when B rolls back', async () => {
    redis.start();
    await until('both instances to subscribe again', async () => ((await subscribers()) === 2 ? true : undefined), 30_000, 200);
    for (const instance of [a, b]) {
      await until(`${instance.process.name} to be ready`, async () => ((await fetch(`${instance.url}/health/ready`)).status === 200 ? true : undefined), 30_000, 200);
    }
    const gid = 'redis-loss-2';
    await postJson(`${a.url}/v1/transactions`, { mode: 'tcc', gid });
    const waiting = postJson<TransactionView>(`${a.url}/v1/transactions`, { mode: 'tcc', gid, wait: true });
    await sleep(300);
    await new TransactionClient({ coordinatorUrl: b.url }).rollback(gid, { wait: true });
    expect((await waiting).body.status).toBe('rolled_back');
  });
});
