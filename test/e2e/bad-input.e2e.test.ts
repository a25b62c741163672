/**
 * Hostile and malformed requests to every route: each must get a 4xx with a stable error code,
 * never a 500, and none may change a stored transaction. Run twice: against a coordinator
 * without API keys, and against one with keys, where the same probes go out with the right
 * role's key (validation must hold behind the guard) and every route also receives forged,
 * missing and wrong-role credentials on otherwise valid requests.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ID_PATTERN, MODES, NAME_PATTERN } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  accountService,
  coordinator,
  generateApiKeys,
  getJson,
  openAccount,
  postJson,
  type CoordinatorHandle,
  type ServiceHandle,
  type StackApiKeys,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { rawHttp } from '../support/raw-http.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;
/** The coordinator with API_KEYS; it calls the same bank, registered by hand with the participant key. */
let keyed: CoordinatorHandle;
let keys: StackApiKeys;

type Role = 'client' | 'participant' | 'metrics' | 'admin';
const SIGNING_SECRET = randomBytes(32).toString('base64');

interface Probe {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  contentType?: string;
  authorization?: string;
  /** The exact status expected (auth refusals); any 4xx otherwise. */
  expectStatus?: number;
}

const HOSTILE_STRINGS = [
  "' OR 1=1 --",
  '"; DROP TABLE global_transactions; --',
  '../../etc/passwd',
  '%00',
  '<script>alert(1)</script>',
  'ünïcödé',
  'x'.repeat(129),
  'x'.repeat(10_000),
  '',
  ' ',
];
const WRONG_VALUES: unknown[] = [null, true, 0, -1, 1e308, 2 ** 53 + 1, 'text', [], [1, 2], {}, { nested: { deep: true } }, ...HOSTILE_STRINGS];

function deepJson(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}

const BASE_BRANCH = { participant: 'bank', action: 'debit', payload: { accountId: 'a', amount: 1 } };

const isPlainObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isName = (v: unknown) => typeof v === 'string' && NAME_PATTERN.test(v);
/** What each field accepts; a probe only uses values outside it (null means "absent" for optional fields). */
const VALID: Record<string, (v: unknown) => boolean> = {
  mode: (v) => MODES.includes(v as never),
  gid: (v) => typeof v === 'string' && ID_PATTERN.test(v),
  branchId: (v) => typeof v === 'string' && ID_PATTERN.test(v),
  name: isName,
  participant: (v) => v === 'bank',
  action: (v) => v === 'debit',
  timeoutMs: (v) => Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 86_400_000,
  metadata: isPlainObject,
  payload: isPlainObject,
  concurrent: (v) => typeof v === 'boolean',
  wait: (v) => typeof v === 'boolean',
  transport: (v) => v === 'http',
  endpoint: (v) => typeof v === 'string' && /^https?:\/\/[^/]+/.test(v),
  actions: () => false,
};

/** Request bodies that are wrong in exactly one field, for each field of each body. */
function bodiesWithOneBadField(base: Record<string, unknown>, fields: string[]): string[] {
  return fields.flatMap((field) =>
    WRONG_VALUES.filter((value) => value !== null && !VALID[field](value)).map((value) => JSON.stringify({ ...base, [field]: value })),
  );
}

function probes(existingGid: string): Probe[] {
  const list: Probe[] = [];
  const post = (path: string, body: string, contentType = 'application/json') => list.push({ method: 'POST', path, body, contentType });

  // Begin: every field wrong in turn, on otherwise valid bodies of each mode.
  for (const base of [
    { mode: 'tcc', branches: [BASE_BRANCH] },
    { mode: '2pc', branches: [BASE_BRANCH] },
    { mode: 'saga', steps: [{ name: 's1', ...BASE_BRANCH }] },
  ]) {
    for (const body of bodiesWithOneBadField(base, ['mode', 'gid', 'timeoutMs', 'metadata', 'concurrent', 'wait'])) {
      // Bodies that stay valid (e.g. metadata {}) are filtered out below.
      post('/v1/transactions', body);
    }
  }
  for (const value of WRONG_VALUES.filter((v) => v !== null)) {
    for (const field of ['participant', 'action', 'payload', 'branchId'] as const) {
      if (!VALID[field](value)) post('/v1/transactions', JSON.stringify({ mode: 'tcc', branches: [{ ...BASE_BRANCH, [field]: value }] }));
      if (!VALID[field](value) && field !== 'branchId') {
        post('/v1/transactions', JSON.stringify({ mode: 'saga', steps: [{ name: 's1', ...BASE_BRANCH, [field]: value }] }));
      }
    }
    if (!Array.isArray(value) || value.length > 0) post('/v1/transactions', JSON.stringify({ mode: 'saga', concurrent: true, steps: [{ name: 's1', ...BASE_BRANCH, dependsOn: value }] }));
    if (!VALID.name(value)) post('/v1/transactions', JSON.stringify({ mode: 'saga', steps: [{ name: value, ...BASE_BRANCH }] }));
    post('/v1/transactions', JSON.stringify({ mode: 'tcc', branches: value }));
    post('/v1/transactions', JSON.stringify(value));
  }
  post('/v1/transactions', JSON.stringify({ mode: 'tcc', branches: Array.from({ length: 101 }, (_, i) => ({ ...BASE_BRANCH, branchId: `b${i}` })) }));
  post('/v1/transactions', JSON.stringify({ mode: 'saga', concurrent: true, steps: [{ name: 'a', ...BASE_BRANCH, dependsOn: ['b'] }, { name: 'b', ...BASE_BRANCH, dependsOn: ['a'] }] }));
  post('/v1/transactions', JSON.stringify({ mode: 'saga', concurrent: true, steps: [{ name: 'a', ...BASE_BRANCH, dependsOn: ['ghost'] }] }));
  post('/v1/transactions', JSON.stringify({ mode: 'xa', metadata: deepJson(2_000) }));
  post('/v1/transactions', JSON.stringify({ mode: 'saga', gid: existingGid, steps: [{ name: 'other', ...BASE_BRANCH }] }));
  post('/v1/transactions', JSON.stringify({ mode: 'tcc', unknownField: 1 }));
  post('/v1/transactions', JSON.stringify({ mode: 'tcc', metadata: { big: 'x'.repeat(1_100_000) } }));
  for (const raw of ['{', '{"mode":', 'null', '[]', '"tcc"', '{"mode":"tcc",}', '\u0000', 'mode=tcc']) post('/v1/transactions', raw);
  post('/v1/transactions', 'mode=tcc', 'application/x-www-form-urlencoded');
  post('/v1/transactions', '{"mode":"tcc"}', 'text/plain');

  // Add a branch / decide: bad gids in the path, and bad bodies for the existing transaction.
  const badGids = HOSTILE_STRINGS.filter((s) => s.trim() !== '').map(encodeURIComponent).concat(['no-such-gid', 'a'.repeat(129)]);
  for (const gid of badGids) {
    post(`/v1/transactions/${gid}/branches`, JSON.stringify(BASE_BRANCH));
    post(`/v1/transactions/${gid}/commit`, '{}');
    post(`/v1/transactions/${gid}/rollback`, '{}');
    list.push({ method: 'GET', path: `/v1/transactions/${gid}` });
    list.push({ method: 'GET', path: `/admin/transactions/${gid}` });
    post(`/admin/transactions/${gid}/retry`, '{}');
    post(`/admin/transactions/${gid}/rollback`, '{}');
  }
  for (const body of bodiesWithOneBadField(BASE_BRANCH, ['participant', 'action', 'payload', 'branchId'])) post(`/v1/transactions/${existingGid}/branches`, body);
  for (const value of WRONG_VALUES.filter((v) => v !== null && !VALID.wait(v))) {
    post(`/v1/transactions/${existingGid}/commit`, JSON.stringify({ wait: value }));
    post(`/v1/transactions/${existingGid}/rollback`, JSON.stringify({ wait: value }));
  }
  post(`/v1/transactions/${existingGid}/rollback`, JSON.stringify({ wait: false, extra: 1 }));
  post(`/v1/transactions/${existingGid}/commit`, JSON.stringify({ unknown: true }));

  // Participants.
  const participant = { name: 'p', transport: 'http', endpoint: 'http://127.0.0.1:1/tx', actions: [{ name: 'a', modes: ['tcc'] }] };
  for (const body of bodiesWithOneBadField(participant, ['name', 'transport', 'endpoint', 'actions'])) {
    // A valid name alone would register a participant: pair it with a bad field.
    post('/v1/participants', body);
  }
  for (const endpoint of ['file:///etc/passwd', 'ftp://x', 'javascript:alert(1)', 'http://', 'not a url']) post('/v1/participants', JSON.stringify({ ...participant, endpoint }));
  post('/v1/participants', JSON.stringify({ ...participant, actions: [{ name: 'a', modes: ['xa'] }] }));
  post('/v1/participants', JSON.stringify({ ...participant, transport: 'tcp', port: 70_000, host: 'x' }));
  // Registered call headers (docs/security.md "Calls that pass a gateway"): none of these may be stored.
  const manyHeaders = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`x-h${i}`, 'v']));
  for (const headers of ['text', [], ['x-a', 'b'], 5, { connection: 'close' }, { Upgrade: 'h2c' }, { 'x-a': 5 }, { 'x a': 'v' }, { 'x-a': 'a\r\nInjected: 1' },
    { 'x-a': 'x'.repeat(5_000) }, { 'webhook-signature': 'v1,x' }, { 'x-tx-gid': 'g' }, { traceparent: '00-x' }, manyHeaders, { 'x-ok': 'v', host: 'elsewhere' }]) {
    post('/v1/participants', JSON.stringify({ ...participant, headers }));
  }
  post('/v1/participants', JSON.stringify({ ...participant, transport: 'redis', endpoint: undefined, headers: { 'x-a': 'b' } }));

  // Operators' participant routes: bad names, bad rotation windows, unknown names.
  for (const hostile of [...HOSTILE_STRINGS.filter((h) => h.trim() !== ''), 'x'.repeat(65)]) {
    post(`/admin/participants/${encodeURIComponent(hostile)}/rotate-secret`, '{}');
    post(`/admin/participants/${encodeURIComponent(hostile)}/release`, '{}');
  }
  for (const overlapSeconds of [-1, 1.5, 'an hour', 1e12, 30 * 24 * 3600 + 1, true, [], {}]) post('/admin/participants/bank/rotate-secret', JSON.stringify({ overlapSeconds }));
  post('/admin/participants/bank/rotate-secret', JSON.stringify({ overlapSeconds: 60, surprise: true }));
  post('/admin/participants/no-such-participant/rotate-secret', '{}');
  post('/admin/participants/no-such-participant/release', '{}');

  // Admin list: every filter wrong.
  for (const [key, values] of Object.entries({
    status: ['lost', "' OR 1=1", '1'],
    mode: ['xa', '%27'],
    participant: ["'; --", 'x'.repeat(65)],
    attention: ['yes', '1'],
    from: ['yesterday', '2026-13-45'],
    to: ['tomorrow'],
    limit: ['0', '-1', '1000', 'ten', '1e9'],
    cursor: ['!!', 'bm90IGEgY3Vyc29y', "' OR 1=1 --"],
    surprise: ['1'],
  })) {
    for (const value of values) list.push({ method: 'GET', path: `/admin/transactions?${key}=${encodeURIComponent(value)}` });
  }
  for (const hostile of HOSTILE_STRINGS.filter((h) => h.trim() !== '')) {
    for (const key of ['status', 'mode', 'participant', 'from', 'cursor', 'limit']) {
      list.push({ method: 'GET', path: `/admin/transactions?${key}=${encodeURIComponent(hostile)}` });
    }
  }
  post('/v1/transactions', '{"mode":"tcc"}', 'application/json; charset=utf-16');
  for (const path of ['/no/such/route', '/v1', '/admin/no-such-page', '/v1/participants/x', '/admin/transactions/x/y']) list.push({ method: 'GET', path });
  list.push({ method: 'POST', path: '/v1/transactions/x/y/z', body: '{}', contentType: 'application/json' });
  return list;
}

/** The role whose key a (well-authenticated) probe of `path` carries. */
function roleFor(probe: Probe): Role {
  if (probe.path.startsWith('/v1/transactions')) return 'client';
  if (probe.path.startsWith('/v1/participants')) return probe.method === 'POST' ? 'participant' : 'client';
  return 'admin';
}

const basic = (password: string) => `Basic ${Buffer.from(`someone:${password}`).toString('base64')}`;

/**
 * Every route with a request that would change something (or read something) if it got
 * through, sent with credentials that must not get it through: 401 for missing, unknown or
 * malformed ones, 403 for a real key of a role the route does not accept.
 */
function forgedCredentialProbes(k: StackApiKeys, existingGid: string, openGid: string): Probe[] {
  const actions = [{ name: 'debit', modes: ['tcc', 'saga'] }];
  const routes: { method: 'GET' | 'POST'; path: string; body?: unknown; roles: Role[] }[] = [
    { method: 'POST', path: '/v1/transactions', body: { mode: 'tcc', wait: true, branches: [BASE_BRANCH] }, roles: ['client'] },
    { method: 'POST', path: '/v1/transactions', body: { mode: 'saga', wait: true, steps: [{ name: 's1', ...BASE_BRANCH }] }, roles: ['client'] },
    { method: 'POST', path: `/v1/transactions/${openGid}/branches`, body: BASE_BRANCH, roles: ['client'] },
    { method: 'POST', path: `/v1/transactions/${openGid}/commit`, body: {}, roles: ['client'] },
    { method: 'POST', path: `/v1/transactions/${openGid}/rollback`, body: {}, roles: ['client'] },
    { method: 'GET', path: `/v1/transactions/${existingGid}`, roles: ['client'] },
    { method: 'POST', path: '/v1/participants', body: { name: 'forged', transport: 'http', endpoint: 'http://127.0.0.1:9/tx', actions }, roles: ['participant'] },
    { method: 'POST', path: '/v1/participants', body: { name: 'bank', transport: 'http', endpoint: 'http://127.0.0.1:9/tx', actions }, roles: ['participant'] },
    { method: 'GET', path: '/v1/participants', roles: ['client', 'participant'] },
    { method: 'GET', path: '/admin/transactions', roles: [] },
    { method: 'GET', path: `/admin/transactions/${existingGid}`, roles: [] },
    { method: 'POST', path: `/admin/transactions/${openGid}/rollback`, body: {}, roles: [] },
    { method: 'POST', path: `/admin/transactions/${existingGid}/retry`, body: {}, roles: [] },
    { method: 'GET', path: '/admin/stats', roles: [] },
    { method: 'GET', path: '/admin/participants', roles: [] },
    { method: 'POST', path: '/admin/participants/bank/rotate-secret', body: { overlapSeconds: 0 }, roles: [] },
    { method: 'POST', path: '/admin/participants/bank/release', body: {}, roles: [] },
    { method: 'GET', path: '/admin', roles: [] },
    { method: 'GET', path: '/admin/stream', roles: [] },
    { method: 'GET', path: '/admin/assets/console.js', roles: [] },
    { method: 'GET', path: '/ADMIN/stats', roles: [] },
    { method: 'GET', path: '/metrics', roles: ['metrics'] },
    { method: 'GET', path: '/docs', roles: [] },
    { method: 'GET', path: '/docs-json', roles: [] },
  ];
  const unauthenticated: (string | undefined)[] = [
    undefined,
    'Bearer not-a-configured-key-0123456789',
    `Bearer ${k.admin}x`,
    `Bearer ${k.admin.slice(0, -1)}`,
    `Bearer ${k.admin.toUpperCase()}`,
    'Bearer ',
    'Bearer',
    `bearer ${k.client}${k.client}`,
    basic('wrong-password-0123456789'),
    basic(`${k.admin}x`),
    `Basic ${Buffer.from(k.admin).toString('base64')}`,
    'Basic !!not-base64!!',
    `Digest ${k.admin}`,
    k.admin,
    `Bearer ${'A'.repeat(8_000)}`,
  ];
  const list: Probe[] = [];
  for (const route of routes) {
    const request = { method: route.method, path: route.path, ...(route.body === undefined ? {} : { body: JSON.stringify(route.body), contentType: 'application/json' }) };
    for (const authorization of unauthenticated) list.push({ ...request, authorization, expectStatus: 401 });
    for (const role of (['client', 'participant', 'metrics'] as const).filter((r) => !route.roles.includes(r))) {
      list.push({ ...request, authorization: `Bearer ${k[role]}`, expectStatus: 403 });
      // Basic (a browser's ambient login) authorises reads only: a POST with it is 401 before any role is looked at.
      list.push({ ...request, authorization: basic(k[role]), expectStatus: route.method === 'GET' ? 403 : 401 });
    }
  }
  return list;
}

/** Sends the probes 20 at a time; the ones not answered as they should be, described. */
async function sendProbes(baseUrl: string, all: Probe[]): Promise<{ sent: number; failures: string[] }> {
  const codes = new Set<string>(Object.values(ErrorCode));
  const failures: string[] = [];
  let sent = 0;
  for (let i = 0; i < all.length; i += 20) {
    await Promise.all(
      all.slice(i, i + 20).map(async (probe) => {
        const headers: Record<string, string> = {};
        if (probe.contentType) headers['content-type'] = probe.contentType;
        if (probe.authorization !== undefined) headers.authorization = probe.authorization;
        // A connection of its own per probe (raw-http.ts): the judged answer is the server's, never a pool's race.
        const response = await rawHttp(Number(new URL(baseUrl).port), { method: probe.method, path: probe.path, headers, body: probe.body });
        sent++;
        const text = response.text;
        let code: unknown;
        try {
          code = (JSON.parse(text) as { error?: unknown }).error;
        } catch {
          code = undefined;
        }
        const statusOk = probe.expectStatus === undefined ? response.status >= 400 && response.status < 500 : response.status === probe.expectStatus;
        const ok = statusOk && typeof code === 'string' && codes.has(code);
        if (!ok) {
          const auth = probe.authorization === undefined ? 'no key' : probe.authorization.slice(0, 30);
          failures.push(`${probe.method} ${probe.path.slice(0, 80)} [${auth}] ${probe.body?.slice(0, 80) ?? ''} -> ${response.status} ${text.slice(0, 120)}`);
        }
      }),
    );
  }
  return { sent, failures };
}

async function snapshot(databaseUrl = databases[0].url): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const tx = await client.query('SELECT gid, status, reason, version, metadata FROM global_transactions ORDER BY gid');
    const branches = await client.query('SELECT gid, branch_id, status, attempts FROM branches ORDER BY gid, branch_id');
    const participants = await client.query(
      'SELECT name, transport, endpoint, host, port, actions, owner_key_digest, secret_generation, previous_secret_generation, call_headers FROM participants ORDER BY name',
    );
    return JSON.stringify([tx.rows, branches.rows, participants.rows]);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  databases = await Promise.all(['bad_coord', 'bad_bank', 'bad_keyed'].map((p) => createTestDatabase(p)));
  // Both coordinators call the same bank, which verifies with the secret its registration got:
  // one SIGNING_SECRET makes both derive that secret (docs/security.md "Secrets").
  coord = await coordinator('bad-input-coordinator', databases[0].url, { LOG_LEVEL: 'warn', SIGNING_SECRET });
  await coord.start();
  bank = await accountService('bank', databases[1].url, coord.url);
  await bank.start();
  await openAccount(bank, 'a', 1_000);
  const client = new TransactionClient({ coordinatorUrl: coord.url });
  await client.begin({ mode: 'tcc', gid: 'existing', branches: [{ ...BASE_BRANCH }], wait: true });
  await client.begin({ mode: 'tcc', gid: 'open-one' });

  keys = generateApiKeys();
  // Hundreds of forged credentials from one address on purpose: no refused-request limit here.
  keyed = await coordinator('bad-input-keyed-coordinator', databases[2].url, { API_KEYS: keys.API_KEYS, LOG_LEVEL: 'warn', SIGNING_SECRET, AUTH_FAILURE_LIMIT_PER_MINUTE: '0' });
  await keyed.start();
  const registered = (await getJson<{ name: string; endpoint: string; actions: unknown }[]>(`${coord.url}/v1/participants`)).find((p) => p.name === 'bank')!;
  const registration = await postJson(`${keyed.url}/v1/participants`, { name: 'bank', transport: 'http', endpoint: registered.endpoint, actions: registered.actions }, keys.participant);
  expect(registration.status).toBe(201);
  const keyedClient = new TransactionClient({ coordinatorUrl: keyed.url, apiKey: keys.client });
  await keyedClient.begin({ mode: 'tcc', gid: 'existing', branches: [{ ...BASE_BRANCH }], wait: true });
  await keyedClient.begin({ mode: 'tcc', gid: 'open-one' });
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill(), keyed?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('bad input', () => {
  it('answers every malformed, oversized, wrongly typed or hostile request with a 4xx and a stable code, and changes nothing', async () => {
    const before = await snapshot();
    const all = [...probes('existing'), ...probes('open-one').filter((p) => p.path.includes('open-one'))];
    const { sent, failures } = await sendProbes(coord.url, all);
    console.log(`bad-input suite: ${sent} requests sent, ${failures.length} without a 4xx and a stable code`);
    for (const failure of failures) console.log(`  ${failure}`);
    expect(sent).toBeGreaterThanOrEqual(1_000);
    expect(failures).toEqual([]);
    expect(await snapshot()).toBe(before);
  });

  it('with API keys: holds validation behind the guard, and refuses forged, missing and wrong-role credentials on every route; changes nothing', async () => {
    const before = await snapshot(databases[2].url);
    const withRightKey = [...probes('existing'), ...probes('open-one').filter((p) => p.path.includes('open-one'))].map((probe) => ({
      ...probe,
      authorization: `Bearer ${keys[roleFor(probe)]}`,
    }));
    const forged = forgedCredentialProbes(keys, 'existing', 'open-one');
    const { sent, failures } = await sendProbes(keyed.url, [...withRightKey, ...forged]);
    console.log(
      `bad-input suite (with API keys): ${sent} requests sent (${forged.length} with forged, missing or wrong-role credentials), ${failures.length} without the expected 4xx and a stable code`,
    );
    for (const failure of failures) console.log(`  ${failure}`);
    expect(forged.length).toBeGreaterThanOrEqual(300);
    expect(sent).toBeGreaterThanOrEqual(1_000);
    expect(failures).toEqual([]);
    expect(await snapshot(databases[2].url)).toBe(before);
  });
});
