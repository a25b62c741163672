/**
 * The operator's ceiling on calls in flight to a participant (PUT /admin/participants/{name}/limits)
 * and what GET /admin/participants and GET /admin/stats show of the overload protection, against
 * two real coordinator instances sharing Postgres and Redis, with API keys, and a real bank.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminStats, ParticipantAdminView, ParticipantView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  REDIS_URL,
  accountService,
  coordinator,
  generateApiKeys,
  getJson,
  openAccount,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
  type StackApiKeys,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let a: CoordinatorHandle;
let b: CoordinatorHandle;
let bank: ServiceHandle;
let keys: StackApiKeys;
let viaB: TransactionClient;

/** The default ceiling (PARTICIPANT_MAX_IN_FLIGHT), set here so the test says what it expects. */
const DEFAULT_MAX = 40;
const SHARED = { REDIS_URL, PARTICIPANT_MAX_IN_FLIGHT: String(DEFAULT_MAX), AUTH_FAILURE_LIMIT_PER_MINUTE: '0', CALL_TIMEOUT_MS: '2000' };

const debit = (amount: number) => ({ participant: 'bank', action: 'debit', payload: { accountId: 'lim', amount } });

async function put(coord: CoordinatorHandle, path: string, body: unknown, apiKey?: string) {
  const response = await fetch(`${coord.url}${path}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, json: (text ? JSON.parse(text) : null) as Record<string, unknown> & ParticipantAdminView };
}

const bankOn = async (coord: CoordinatorHandle): Promise<ParticipantAdminView> => {
  const list = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
  const found = list.find((p) => p.name === 'bank');
  if (!found) throw new Error('bank is not listed');
  return found;
};

beforeAll(async () => {
  keys = generateApiKeys();
  databases = await Promise.all(['limits_coord', 'limits_bank'].map((p) => createTestDatabase(p)));
  a = await coordinator('limits-a', databases[0].url, { ...SHARED, API_KEYS: keys.API_KEYS });
  b = await coordinator('limits-b', databases[0].url, { ...SHARED, API_KEYS: keys.API_KEYS });
  await a.start();
  await b.start();
  bank = await accountService('bank', databases[1].url, a.url, 'http', keys.participant);
  await bank.start();
  await openAccount(bank, 'lim', 1_000_000);
  viaB = new TransactionClient({ coordinatorUrl: b.url, apiKey: keys.client });
  // Instance B calls the bank, so it has a gate for it.
  await viaB.begin({ mode: 'tcc', gid: 'lim-1', wait: true, branches: [debit(1)] });
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), a?.process.kill(), b?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('GET /admin/participants', () => {
  it("shows each participant's gate on the instance that answers, and no override yet", async () => {
    const onB = await bankOn(b);
    expect(onB.maxInFlight).toBeNull();
    expect(onB.load).toEqual({
      inFlight: 0,
      queued: 0,
      limit: expect.any(Number) as number,
      maxInFlight: DEFAULT_MAX,
      breaker: 'closed',
      breakerRetryInMs: null,
      notMade: { breakerOpen: 0, queueFull: 0, queueTimeout: 0 },
    });
    expect(onB.load!.limit).toBeGreaterThanOrEqual(1);
    expect(onB.load!.limit).toBeLessThanOrEqual(DEFAULT_MAX);
  });
});

describe('GET /admin/stats', () => {
  it("adds the answering instance's admission counts and queued calls to the counts of the log", async () => {
    const stats = await getJson<AdminStats>(`${b.url}/admin/stats`, keys.admin);
    expect(stats.total).toBe(1);
    expect(stats.instance).toEqual({ instanceId: 'limits-b', admitted: 1, refused: 0, queued: 0 });
    expect((await getJson<AdminStats>(`${a.url}/admin/stats`, keys.admin)).instance).toMatchObject({ instanceId: 'limits-a', admitted: 0, refused: 0 });
  });
});

describe('PUT /admin/participants/{name}/limits', () => {
  it('sets the ceiling, answers the admin view, and every instance applies it without waiting for a call', async () => {
    const set = await put(a, '/admin/participants/BANK/limits', { maxInFlight: 7 }, keys.admin);
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ name: 'bank', maxInFlight: 7, secretGeneration: 1 });
    expect((await bankOn(a)).maxInFlight).toBe(7);
    // B heard of it on the bus: its record and its gate have the new ceiling.
    const onB = await until('instance B to apply the ceiling', async () => {
      const view = await bankOn(b);
      return view.maxInFlight === 7 && view.load?.maxInFlight === 7 ? view : undefined;
    });
    expect(onB.load!.limit).toBeLessThanOrEqual(7);

    // Calls still go through, under the new ceiling.
    expect((await viaB.begin({ mode: 'tcc', gid: 'lim-2', wait: true, branches: [debit(1)] })).status).toBe('committed');
    expect((await bankOn(b)).load).toMatchObject({ maxInFlight: 7, inFlight: 0, breaker: 'closed' });
  });

  it('is kept when the participant registers again', async () => {
    const registered = (await getJson<ParticipantView[]>(`${a.url}/v1/participants`, keys.participant)).find((p) => p.name === 'bank')!;
    const again = await fetch(`${a.url}/v1/participants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.participant}` },
      body: JSON.stringify({ name: 'bank', transport: 'http', endpoint: registered.endpoint, actions: registered.actions }),
    });
    expect(again.status).toBe(201);
    expect((await bankOn(a)).maxInFlight).toBe(7);
  });

  it('clears the ceiling with null: PARTICIPANT_MAX_IN_FLIGHT again, on every instance', async () => {
    const cleared = await put(b, '/admin/participants/bank/limits', { maxInFlight: null }, keys.admin);
    expect(cleared.status).toBe(200);
    expect(cleared.json).toMatchObject({ name: 'bank', maxInFlight: null, load: { maxInFlight: DEFAULT_MAX } });
    await until('instance A to read the cleared ceiling', async () => ((await bankOn(a)).maxInFlight === null ? true : undefined));
  });

  it('refuses a bad value with 400 VALIDATION_FAILED naming the field, and changes nothing', async () => {
    expect((await put(a, '/admin/participants/bank/limits', { maxInFlight: 9 }, keys.admin)).status).toBe(200);
    const bodies: [unknown, string][] = [
      [{}, 'maxInFlight'],
      [{ maxInFlight: 0 }, 'maxInFlight'],
      [{ maxInFlight: -3 }, 'maxInFlight'],
      [{ maxInFlight: 10_001 }, 'maxInFlight'],
      [{ maxInFlight: 2.5 }, 'maxInFlight'],
      [{ maxInFlight: '5' }, 'maxInFlight'],
      [{ maxInFlight: true }, 'maxInFlight'],
      [{ maxInFlight: [5] }, 'maxInFlight'],
      [{ maxInFlight: 5, burst: 10 }, 'burst'],
    ];
    for (const [body, field] of bodies) {
      const refused = await put(a, '/admin/participants/bank/limits', body, keys.admin);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json, JSON.stringify(body)).toMatchObject({ statusCode: 400, error: 'VALIDATION_FAILED', field });
    }
    const badName = await put(a, '/admin/participants/bad%20name!/limits', { maxInFlight: 5 }, keys.admin);
    expect(badName.status).toBe(400);
    expect(badName.json).toMatchObject({ error: 'VALIDATION_FAILED', field: 'name' });
    expect((await bankOn(a)).maxInFlight).toBe(9);
  });

  it('answers 404 NOT_FOUND for a name not registered', async () => {
    const missing = await put(a, '/admin/participants/no-such-bank/limits', { maxInFlight: 5 }, keys.admin);
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ statusCode: 404, error: 'NOT_FOUND' });
  });

  it('is for admin keys only: 401 without a key, 403 with a client or participant key', async () => {
    const anonymous = await put(a, '/admin/participants/bank/limits', { maxInFlight: 1 });
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toMatchObject({ error: 'UNAUTHENTICATED' });
    for (const key of [keys.client, keys.participant, keys.metrics]) {
      const forbidden = await put(a, '/admin/participants/bank/limits', { maxInFlight: 1 }, key);
      expect(forbidden.status).toBe(403);
      expect(forbidden.json).toMatchObject({ error: 'FORBIDDEN' });
    }
    expect((await bankOn(a)).maxInFlight).toBe(9);
  });
});
