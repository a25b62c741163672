/**
 * The secure front door against a real coordinator started with API_KEYS and PARTICIPANT_HOSTS:
 * who may call what (docs/security.md), the participant allow-list, the SDK and a demo account
 * service working with keys, the client API's rate limit, and the refusal to listen publicly
 * without keys.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorCode,
  parseSigningSecret,
  verifyCall,
  type ParticipantAdminView,
  type ParticipantRegistrationView,
  type ParticipantView,
  type SecretRotationView,
} from '@nest-dtx/protocol';
import { CoordinatorError, TransactionClient } from '@nest-dtx/sdk';
import {
  ManagedProcess,
  ROOT,
  accountService,
  accountsOf,
  coordinator,
  freePort,
  generateApiKeys,
  getJson,
  openAccount,
  postJson,
  type CoordinatorHandle,
  type ServiceHandle,
  type StackApiKeys,
} from '../../scripts/lib/stack.js';
import { DataSource } from 'typeorm';
import { dtxMigrations } from '@nest-dtx/sdk';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { LEDGER_DDL, startParticipant } from '../support/signed-participant.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;
let keys: StackApiKeys;

type Role = 'admin' | 'client' | 'participant' | 'metrics';
/** A second participant key: names registered by the first belong to the first (PROTOCOL.md 4). */
const secondParticipantKey = `second-participant-${'k'.repeat(24)}`;
type ErrorAnswer = { error?: string; message?: string; field?: string; statusCode?: number };

const basic = (password: string, user = 'operator') => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function call(method: 'GET' | 'POST', path: string, authorization?: string, body?: unknown) {
  const response = await fetch(`${coord.url}${path}`, {
    method,
    headers: { ...(authorization ? { authorization } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let json: ErrorAnswer | null;
  try {
    json = JSON.parse(text) as ErrorAnswer;
  } catch {
    json = null;
  }
  return { status: response.status, headers: response.headers, json, text };
}

const bearer = (role: Role) => `Bearer ${keys[role]}`;

/** One route of each group, with the roles that may use it (admin may use all). */
const ROUTE_GROUPS: { name: string; method: 'GET' | 'POST'; path: string; body?: unknown; roles: Role[] }[] = [
  { name: 'begin', method: 'POST', path: '/v1/transactions', body: { mode: 'tcc' }, roles: ['client'] },
  { name: 'read a transaction', method: 'GET', path: '/v1/transactions/auth-existing', roles: ['client'] },
  { name: 'commit', method: 'POST', path: '/v1/transactions/auth-existing/commit', body: {}, roles: ['client'] },
  {
    name: 'register a participant',
    method: 'POST',
    path: '/v1/participants',
    body: { name: 'auth-probe', transport: 'http', endpoint: 'http://127.0.0.1:9/tx', actions: [{ name: 'a', modes: ['tcc'] }] },
    roles: ['participant'],
  },
  { name: 'list participants', method: 'GET', path: '/v1/participants', roles: ['client', 'participant'] },
  { name: 'admin participants', method: 'GET', path: '/admin/participants', roles: [] },
  { name: 'admin release a name', method: 'POST', path: '/admin/participants/nobody/release', body: {}, roles: [] },
  { name: 'admin list', method: 'GET', path: '/admin/transactions', roles: [] },
  { name: 'admin stats', method: 'GET', path: '/admin/stats', roles: [] },
  { name: 'admin retry', method: 'POST', path: '/admin/transactions/auth-existing/retry', body: {}, roles: [] },
  { name: 'admin console', method: 'GET', path: '/admin', roles: [] },
  { name: 'admin stream', method: 'GET', path: '/admin/stream', roles: [] },
  { name: 'metrics', method: 'GET', path: '/metrics', roles: ['metrics'] },
  { name: 'OpenAPI document', method: 'GET', path: '/docs', roles: [] },
];

beforeAll(async () => {
  keys = generateApiKeys();
  databases = await Promise.all(['auth_coord', 'auth_bank'].map((p) => createTestDatabase(p)));
  coord = await coordinator('auth-coordinator', databases[0].url, {
    API_KEYS: `${keys.API_KEYS},participant:${secondParticipantKey}`,
    PARTICIPANT_HOSTS: '127.0.0.1,localhost',
    LOG_LEVEL: 'log',
    // These tests are refused 401 on purpose about a hundred times from one address; the
    // refused-request limit has its own test (front-door.e2e.test.ts).
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
  });
  await coord.start();
  bank = await accountService('bank', databases[1].url, coord.url, 'http', keys.participant);
  await bank.start();
  await openAccount(bank, 'alice', 1_000);
  await openAccount(bank, 'bob', 0);
  const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
  await client.begin({ mode: 'tcc', gid: 'auth-existing' });
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('start-up', () => {
  it('says in one log line that keys are required', () => {
    const log = readFileSync(coord.process.logFile, 'utf8');
    expect(log).toContain('API keys: 5 configured; every route but /health/live and /health/ready needs one');
  });

  it('refuses to listen on a public address without keys, in one line, exit code 1', async () => {
    const port = await freePort();
    const open = new ManagedProcess('auth-public-without-keys', resolve(ROOT, 'dist/apps/coordinator/src/main.js'), {
      PORT: String(port),
      HOST: '0.0.0.0',
      DATABASE_URL: databases[0].url,
      API_KEYS: '',
    });
    open.start();
    expect(await open.waitExit()).toBe(1);
    await open.kill();
    const lines = readFileSync(open.logFile, 'utf8').trim().split('\n');
    expect(lines.at(-1)).toBe(
      'coordinator failed to start: invalid configuration: HOST 0.0.0.0 is reachable from other machines; set API_KEYS, or listen on 127.0.0.1',
    );
  });
});

describe('health', () => {
  it('stays open without a key', async () => {
    expect((await call('GET', '/health/live')).status).toBe(200);
    expect((await call('GET', '/health/ready')).status).toBe(200);
  });
});

describe('authentication', () => {
  const badCredentials: [string, () => string | undefined][] = [
    ['no key', () => undefined],
    ['an unknown key', () => 'Bearer an-unknown-key-0123456789'],
    ['a key with an extra character', () => `Bearer ${keys.admin}x`],
    ['an empty Bearer', () => 'Bearer '],
    ['a malformed header', () => `Token ${keys.admin}`],
    ['Basic with a wrong password', () => basic('wrong-password-0123456789')],
  ];

  for (const group of ROUTE_GROUPS) {
    it(`answers 401 UNAUTHENTICATED on ${group.name} (${group.method} ${group.path}) without a valid key`, async () => {
      for (const [what, header] of badCredentials) {
        const answer = await call(group.method, group.path, header(), group.body);
        expect({ what, status: answer.status, error: answer.json?.error }).toEqual({ what, status: 401, error: ErrorCode.UNAUTHENTICATED });
        expect(answer.json?.statusCode).toBe(401);
        expect(typeof answer.json?.message).toBe('string');
      }
    });
  }

  it('challenges with Basic under /admin, so a browser prompts for the key, and with Bearer on the API', async () => {
    for (const path of ['/admin', '/admin/transactions', '/admin/stream', '/admin/assets/app.js']) {
      const answer = await call('GET', path);
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Basic realm="nest-dtx admin", charset="UTF-8"');
    }
    expect((await call('GET', '/v1/participants')).headers.get('www-authenticate')).toBe('Bearer realm="nest-dtx"');
  });
});

describe('authorization', () => {
  for (const group of ROUTE_GROUPS) {
    const refused = (['client', 'participant', 'metrics'] as const).filter((role) => !group.roles.includes(role));
    if (refused.length === 0) continue;
    it(`answers 403 FORBIDDEN on ${group.name} to ${refused.join(' and ')} keys`, async () => {
      for (const role of refused) {
        const answer = await call(group.method, group.path, bearer(role), group.body);
        expect({ role, status: answer.status, error: answer.json?.error }).toEqual({ role, status: 403, error: ErrorCode.FORBIDDEN });
        expect(answer.headers.get('www-authenticate')).toBeNull();
      }
    });
  }

  it('lets each role through its routes, and admin through all of them', async () => {
    expect((await call('POST', '/v1/transactions', bearer('client'), { mode: 'tcc' })).status).toBe(201);
    expect((await call('GET', '/v1/transactions/auth-existing', bearer('client'))).status).toBe(200);
    expect((await call('GET', '/v1/transactions/auth-existing', bearer('admin'))).status).toBe(200);
    expect((await call('POST', '/v1/transactions', bearer('admin'), { mode: 'tcc' })).status).toBe(201);
    for (const role of ['client', 'participant', 'admin'] as const) {
      expect((await call('GET', '/v1/participants', bearer(role))).status).toBe(200);
    }
    const registration = ROUTE_GROUPS.find((g) => g.name === 'register a participant')!;
    expect((await call('POST', '/v1/participants', bearer('participant'), registration.body)).status).toBe(201);
    expect((await call('POST', '/v1/participants', bearer('admin'), { ...(registration.body as object), name: 'auth-probe-admin' })).status).toBe(201);
    expect((await call('GET', '/admin/transactions', bearer('admin'))).status).toBe(200);
    expect((await call('GET', '/admin/stats', bearer('admin'))).status).toBe(200);
    const metrics = await call('GET', '/metrics', bearer('admin'));
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('dtx_transactions_begun_total');
  });

  it('lets a metrics key read /metrics and the health probes, and nothing else', async () => {
    const metrics = await call('GET', '/metrics', bearer('metrics'));
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('dtx_transactions_in_doubt');
    expect((await call('GET', '/health/ready', bearer('metrics'))).status).toBe(200);
    // Every other group is refused (the loop above covers them one by one; this is the summary).
    const others = ROUTE_GROUPS.filter((g) => !g.roles.includes('metrics'));
    const statuses = await Promise.all(others.map(async (g) => (await call(g.method, g.path, bearer('metrics'), g.body)).status));
    expect(new Set(statuses)).toEqual(new Set([403]));
  });

  it('accepts the key as the password of HTTP Basic, whatever the user name', async () => {
    expect((await call('GET', '/admin/stats', basic(keys.admin))).status).toBe(200);
    expect((await call('GET', '/admin/stats', basic(keys.admin, ''))).status).toBe(200);
    expect((await call('GET', '/v1/transactions/auth-existing', basic(keys.client, 'app'))).status).toBe(200);
    expect((await call('GET', '/admin/stats', basic(keys.client))).status).toBe(403);
  });
});

describe('participant registration', () => {
  it('refuses an endpoint or TCP host outside PARTICIPANT_HOSTS, naming the field, and stores nothing', async () => {
    const actions = [{ name: 'debit', modes: ['tcc'] }];
    const attempts = [
      { body: { name: 'intruder', transport: 'http', endpoint: 'http://169.254.169.254/latest', actions }, field: 'endpoint' },
      { body: { name: 'intruder', transport: 'http', endpoint: 'https://127.0.0.1.evil.example/tx', actions }, field: 'endpoint' },
      { body: { name: 'intruder', transport: 'tcp', host: 'bank-z', port: 5001, actions }, field: 'host' },
      // Overwriting a registered participant with an outside address is refused the same way.
      { body: { name: 'bank', transport: 'http', endpoint: 'http://10.0.0.7:4001/tx', actions }, field: 'endpoint' },
    ];
    for (const { body, field } of attempts) {
      const answer = await call('POST', '/v1/participants', bearer('participant'), body);
      expect({ status: answer.status, error: answer.json?.error, field: answer.json?.field }).toEqual({
        status: 403,
        error: ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED,
        field,
      });
    }
    const listed = await getJson<ParticipantView[]>(`${coord.url}/v1/participants`, keys.admin);
    expect(listed.map((p) => p.name)).not.toContain('intruder');
    expect(listed.find((p) => p.name === 'bank')?.endpoint).toBe(`${bank.url}/tx`);
  });

  it('refuses endpoints with credentials, a query, or another scheme as bad input', async () => {
    const actions = [{ name: 'debit', modes: ['tcc'] }];
    for (const endpoint of ['http://user:secret@127.0.0.1:4001/tx', 'http://127.0.0.1:4001/tx?next=1', 'http://127.0.0.1:4001/tx#x', 'ftp://127.0.0.1/tx']) {
      const answer = await call('POST', '/v1/participants', bearer('participant'), { name: 'odd', transport: 'http', endpoint, actions });
      expect({ endpoint, status: answer.status, error: answer.json?.error, field: answer.json?.field }).toEqual({
        endpoint,
        status: 400,
        error: ErrorCode.VALIDATION_FAILED,
        field: 'endpoint',
      });
    }
  });
});

describe('the SDK and a demo service with keys', () => {
  it('registered the account service with its participant key, and a transfer commits with the client key', async () => {
    const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
    const view = await client.begin({
      mode: 'tcc',
      wait: true,
      branches: [
        { participant: 'bank', action: 'debit', payload: { accountId: 'alice', amount: 250 } },
        { participant: 'bank', action: 'credit', payload: { accountId: 'bob', amount: 250 } },
      ],
    });
    expect(view.status).toBe('committed');
    const interactive = await client.tcc(async (tx) => {
      await tx.branch('bank', 'debit', { accountId: 'alice', amount: 50 });
      await tx.branch('bank', 'credit', { accountId: 'bob', amount: 50 });
    });
    expect(interactive.status).toBe('committed');
    const summary = await accountsOf(bank);
    expect(summary.accounts.find((a) => a.id === 'alice')?.balance).toBe(700);
    expect(summary.accounts.find((a) => a.id === 'bob')?.balance).toBe(300);
  });

  it('gets 401 UNAUTHENTICATED through the SDK without a key, and 403 FORBIDDEN with the wrong role', async () => {
    const anonymous = new TransactionClient({ coordinatorUrl: coord.url });
    await expect(anonymous.get('auth-existing')).rejects.toMatchObject({ statusCode: 401, code: ErrorCode.UNAUTHENTICATED });
    const participantOnly = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.participant });
    const refused = await participantOnly.begin({ mode: 'tcc' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CoordinatorError);
    expect(refused).toMatchObject({ statusCode: 403, code: ErrorCode.FORBIDDEN });
  });
});

/** A participant written in the test, over a real socket: answers 200 to every call and keeps what arrived. */
class RecordingParticipant {
  readonly calls: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  private server: Server | null = null;
  endpoint = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.calls.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', done));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/tx`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }
}

const sagaOf = (participant: string, gid: string) => ({
  mode: 'saga' as const,
  gid,
  wait: true,
  steps: [{ name: 'only', participant, action: 'ship', payload: { gid } }],
});
const shipAction = [{ name: 'ship', modes: ['saga'] }];
const keyOf = (secret: string) => parseSigningSecret(secret);
const verifies = (secret: string, c: { headers: IncomingHttpHeaders; body: string }) => verifyCall([keyOf(secret)], c.headers, c.body, Date.now() / 1000).ok;

describe('participant names belong to the key that first registered them', () => {
  const register = (key: string, name: string, endpoint = 'http://127.0.0.1:9/tx') =>
    call('POST', '/v1/participants', `Bearer ${key}`, { name, transport: 'http', endpoint, actions: shipAction });

  it('answers 403 FORBIDDEN to another participant key taking over the demo bank, and nothing changes', async () => {
    const before = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
    const answer = await register(secondParticipantKey, 'bank', 'http://127.0.0.1:9/stolen');
    expect({ status: answer.status, error: answer.json?.error, field: answer.json?.field }).toEqual({ status: 403, error: ErrorCode.FORBIDDEN, field: 'name' });
    expect(answer.text).not.toContain('whsec_');
    const after = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
    expect(after.find((p) => p.name === 'bank')).toEqual(before.find((p) => p.name === 'bank'));
    expect(after.find((p) => p.name === 'bank')).toMatchObject({ endpoint: `${bank.url}/tx`, owner: 'key#3' });
    // The bank still gets its calls: a transfer commits.
    const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
    const view = await client.begin({ mode: 'tcc', wait: true, branches: [
      { participant: 'bank', action: 'debit', payload: { accountId: 'alice', amount: 1 } },
      { participant: 'bank', action: 'credit', payload: { accountId: 'bob', amount: 1 } },
    ] });
    expect(view.status).toBe('committed');
  });

  it('lets the owner register again, and an operator release the name to another key, with a secret the first owner never saw', async () => {
    const first = await register(keys.participant, 'auth-owned');
    expect(first.status).toBe(201);
    const firstSecret = (first.json as unknown as ParticipantRegistrationView).signingSecret;
    expect((await register(keys.participant, 'auth-owned')).status).toBe(201);
    expect((await register(secondParticipantKey, 'auth-owned')).status).toBe(403);
    // Releasing needs the admin role.
    expect((await call('POST', '/admin/participants/auth-owned/release', bearer('participant'), {})).status).toBe(403);
    const released = await call('POST', '/admin/participants/auth-owned/release', bearer('admin'), {});
    expect(released.status).toBe(200);
    expect(released.json).toMatchObject({ name: 'auth-owned', owner: null, secretGeneration: 2 });
    const second = await register(secondParticipantKey, 'auth-owned');
    expect(second.status).toBe(201);
    expect((second.json as unknown as ParticipantRegistrationView).signingSecret).not.toBe(firstSecret);
    expect((await register(keys.participant, 'auth-owned')).status).toBe(403);
    const listed = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
    expect(listed.find((p) => p.name === 'auth-owned')?.owner).toBe('key#5');
    expect((await call('POST', '/admin/participants/no-such-name/release', bearer('admin'), {})).status).toBe(404);
  });
});

describe('signed calls and their secrets', () => {
  const recorder = new RecordingParticipant();
  const client = () => new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
  let secret = '';

  beforeAll(async () => {
    await recorder.start();
    const answer = await call('POST', '/v1/participants', bearer('participant'), {
      name: 'auth-recorder',
      transport: 'http',
      endpoint: recorder.endpoint,
      actions: shipAction,
      headers: { 'X-Gateway-Key': 'gw-secret-value-1', authorization: 'Bearer gateway-token-2' },
    });
    expect(answer.status).toBe(201);
    secret = (answer.json as unknown as ParticipantRegistrationView).signingSecret;
  });

  afterAll(() => recorder.stop());

  it('hands the secret out only in the registration answer, and never lists it or a header value', async () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(keyOf(secret)).toHaveLength(32);
    for (const [path, key] of [['/v1/participants', keys.client], ['/admin/participants', keys.admin]] as const) {
      const text = (await call('GET', path, `Bearer ${key}`)).text;
      expect(text).toContain('auth-recorder');
      for (const hidden of ['whsec_', 'gw-secret-value-1', 'gateway-token-2']) expect(text).not.toContain(hidden);
    }
    const listed = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
    expect(listed.find((p) => p.name === 'auth-recorder')?.callHeaderNames).toEqual(['authorization', 'x-gateway-key']);
  });

  it('signs each call with the participant\'s secret and sends its registered headers', async () => {
    expect((await client().begin(sagaOf('auth-recorder', 'auth-signed-1'))).status).toBe('committed');
    const received = recorder.calls.at(-1)!;
    expect(received.url).toBe('/tx/ship/execute');
    expect(received.headers['webhook-id']).toBe('auth-signed-1/only/execute');
    expect(verifies(secret, received)).toBe(true);
    expect(received.headers['x-gateway-key']).toBe('gw-secret-value-1');
    expect(received.headers.authorization).toBe('Bearer gateway-token-2');
    // Registering again (the SDK does at every start) hands out the same secret.
    const again = await call('POST', '/v1/participants', bearer('participant'), { name: 'auth-recorder', transport: 'http', endpoint: recorder.endpoint, actions: shipAction });
    expect((again.json as unknown as ParticipantRegistrationView).signingSecret).toBe(secret);
  });

  it('signs with the old and the new secret side by side while a rotation overlaps, and only the new one after a revocation', async () => {
    const rotated = await call('POST', '/admin/participants/auth-recorder/rotate-secret', bearer('admin'), { overlapSeconds: 600 });
    expect(rotated.status).toBe(200);
    const next = (rotated.json as unknown as SecretRotationView).signingSecret;
    expect(next).not.toBe(secret);
    expect(rotated.json).toMatchObject({ secretGeneration: 2 });
    expect(typeof (rotated.json as unknown as SecretRotationView).previousSecretValidUntil).toBe('string');
    await client().begin(sagaOf('auth-recorder', 'auth-rotating-1'));
    const during = recorder.calls.at(-1)!;
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect([verifies(next, during), verifies(secret, during)]).toEqual([true, true]);

    const revoked = await call('POST', '/admin/participants/auth-recorder/rotate-secret', bearer('admin'), { overlapSeconds: 0 });
    const last = (revoked.json as unknown as SecretRotationView).signingSecret;
    expect(revoked.json).toMatchObject({ secretGeneration: 3, previousSecretValidUntil: null });
    await client().begin(sagaOf('auth-recorder', 'auth-revoked-1'));
    const after = recorder.calls.at(-1)!;
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect([verifies(last, after), verifies(next, after), verifies(secret, after)]).toEqual([true, false, false]);
  });

  it('refuses registered headers that are hop-by-hop, protocol or malformed, naming the header, and stores nothing', async () => {
    const before = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
    const cases: [Record<string, unknown>, string][] = [
      [{ connection: 'close' }, 'headers.connection'],
      [{ 'Transfer-Encoding': 'chunked' }, 'headers.Transfer-Encoding'],
      [{ 'webhook-signature': 'v1,forged' }, 'headers.webhook-signature'],
      [{ 'x-tx-gid': 'other' }, 'headers.x-tx-gid'],
      [{ 'x-ok': 'line\r\nInjected: yes' }, 'headers.x-ok'],
      [{ 'bad name': 'v' }, 'headers.bad name'],
      [{ 'x-number': 5 }, 'headers.x-number'],
      [Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`x-h${i}`, 'v'])), 'headers'],
    ];
    for (const [headers, field] of cases) {
      const answer = await call('POST', '/v1/participants', bearer('participant'), { name: 'auth-recorder', transport: 'http', endpoint: recorder.endpoint, actions: shipAction, headers });
      expect({ field, status: answer.status, error: answer.json?.error, named: answer.json?.field }).toEqual({ field, status: 400, error: ErrorCode.VALIDATION_FAILED, named: field });
    }
    const tcp = await call('POST', '/v1/participants', bearer('participant'), { name: 'auth-tcp', transport: 'tcp', host: '127.0.0.1', port: 5999, actions: shipAction, headers: { 'x-a': 'b' } });
    expect({ status: tcp.status, field: tcp.json?.field }).toEqual({ status: 400, field: 'headers' });
    expect(await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin)).toEqual(before);
  });
});

describe('secrets every instance and restart agree on', () => {
  it('hands out the same secret after a restart, and two coordinators with one SIGNING_SECRET derive the same secret', async () => {
    const registration = { name: 'auth-stable', transport: 'http', endpoint: 'http://127.0.0.1:9/tx', actions: shipAction };
    const secretAt = async (url: string, key: string) =>
      (await postJson<ParticipantRegistrationView>(`${url}/v1/participants`, registration, key)).body.signingSecret;
    const before = await secretAt(coord.url, keys.participant);
    await coord.process.kill();
    await coord.start();
    expect(await secretAt(coord.url, keys.participant)).toBe(before);

    const signingSecret = randomBytes(32).toString('base64');
    const pair = await Promise.all(['auth_signing_a', 'auth_signing_b'].map((p) => createTestDatabase(p)));
    databases.push(...pair);
    const twins = await Promise.all(pair.map((db, i) => coordinator(`auth-signing-${i}`, db.url, { API_KEYS: keys.API_KEYS, SIGNING_SECRET: signingSecret, LOG_LEVEL: 'warn' })));
    try {
      await Promise.all(twins.map((t) => t.start()));
      const [a, b] = await Promise.all(twins.map((t) => secretAt(t.url, keys.participant)));
      expect(a).toBe(b);
      expect(a).not.toBe(before);
    } finally {
      await Promise.all(twins.map((t) => t.process.kill()));
    }
  });
});

describe('an SDK participant behind a guard of its host app', () => {
  it('registers the header the guard wants, and the coordinator\'s signed calls pass the guard and run', async () => {
    const db = await createTestDatabase('auth_guarded');
    databases.push(db);
    const barrier = new DataSource({ type: 'postgres', url: db.url, migrations: [...dtxMigrations] });
    await barrier.initialize();
    await barrier.runMigrations();
    await barrier.query(LEDGER_DDL);
    await barrier.destroy();
    const port = await freePort();
    const guard = { name: 'x-internal-token', value: 'host-app-token-123' };
    const participant = await startParticipant(
      db.url,
      { name: 'guarded', coordinatorUrl: coord.url, publicUrl: `http://127.0.0.1:${port}`, apiKey: keys.participant, callHeaders: { [guard.name]: guard.value } },
      { port, requiredHeader: guard },
    );
    try {
      const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
      const view = await client.begin({ mode: 'saga', gid: 'auth-guarded-1', wait: true, steps: [{ name: 'c', participant: 'guarded', action: 'credit', payload: { amount: 7 } }] });
      expect(view.status).toBe('committed');
      expect(participant.ledger.calls).toEqual(['auth-guarded-1/execute']);
      // Without the header the host app's guard refuses, before the SDK sees the call.
      const direct = await fetch(`${participant.url}/tx/credit/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(direct.status).toBe(403);
      const listed = await call('GET', '/admin/participants', bearer('admin'));
      expect(listed.text).not.toContain(guard.value);
    } finally {
      await participant.app.close();
    }
  });
});

describe('rate limit', () => {
  let limited: CoordinatorHandle;
  let limitedDb: TestDatabase;
  const otherClientKey = 'second-client-key-0123456789';

  beforeAll(async () => {
    limitedDb = await createTestDatabase('auth_limited');
    limited = await coordinator('auth-limited-coordinator', limitedDb.url, {
      API_KEYS: `${keys.API_KEYS},client:${otherClientKey}`,
      RATE_LIMIT_PER_MINUTE: '5',
      LOG_LEVEL: 'warn',
    });
    await limited.start();
  });

  afterAll(async () => {
    await limited?.process.kill();
    await limitedDb?.drop();
  });

  it('answers 429 RATE_LIMITED with Retry-After once a key used up its minute, counting every client route, per key', async () => {
    const get = (path: string, key: string) => fetch(`${limited.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const statuses: number[] = [];
    // Five requests spread over two routes share one budget.
    for (const path of ['/v1/transactions/a', '/v1/transactions/b', '/v1/transactions/c', '/v1/transactions/d']) statuses.push((await get(path, keys.client)).status);
    statuses.push((await fetch(`${limited.url}/v1/transactions`, { method: 'POST', headers: { authorization: `Bearer ${keys.client}`, 'content-type': 'application/json' }, body: '{"mode":"tcc"}' })).status);
    expect(statuses).toEqual([404, 404, 404, 404, 201]);

    const over = await get('/v1/transactions/e', keys.client);
    expect(over.status).toBe(429);
    expect(((await over.json()) as { error: string }).error).toBe(ErrorCode.RATE_LIMITED);
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);

    // Another key has its own budget; routes outside the client API are not limited.
    expect((await get('/v1/transactions/e', otherClientKey)).status).toBe(404);
    expect((await get('/v1/participants', keys.client)).status).toBe(200);
    expect((await fetch(`${limited.url}/health/live`)).status).toBe(200);
  });
});
