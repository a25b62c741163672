/**
 * What a fuzzer sends, against a real coordinator and a real Postgres: every bad input is a 4xx
 * naming its field with nothing written, every participant answer is recordable (the step is
 * never run again for it), and a database that refuses connections is a 503 STORE_UNAVAILABLE
 * with Retry-After on every route that needs it, until it comes back.
 *
 * Text Postgres cannot store: NUL and unpaired UTF-16 surrogates. In JSON they travel as the
 * escapes `\u0000` and `\ud800`, which JSON.stringify writes for such JS strings.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { coordinator, postJson, sleep, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { rawHttp } from '../support/raw-http.js';
import { closeServer } from '../support/servers.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const NUL = String.fromCharCode(0);
const HIGH = String.fromCharCode(0xd800);
const LOW = String.fromCharCode(0xdc00);

/** How the raw participant answers each gid's phases: status and raw body text. */
const answers = new Map<string, Partial<Record<string, { status: number; body: string }>>>();
const calls: { gid: string; phase: string }[] = [];
let server: Server;
let participantUrl = '';
let database: TestDatabase;
let proxy: TcpProxy;
let coord: CoordinatorHandle;

function startParticipant(): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { gid: string; phase: string };
      calls.push({ gid: body.gid, phase: body.phase });
      const answer = answers.get(body.gid)?.[body.phase] ?? { status: 200, body: '{}' };
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      participantUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      resolve();
    }),
  );
}

const callsOf = (gid: string, phase: string) => calls.filter((c) => c.gid === gid && c.phase === phase).length;

async function request(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(`${coord.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

const view = async (gid: string) => (await request('GET', `/v1/transactions/${gid}`)).body as unknown as TransactionView & { needsAttention: boolean };

beforeAll(async () => {
  await startParticipant();
  database = await createTestDatabase('hostile_coord');
  // The coordinator reaches its database through a proxy the last test cuts.
  proxy = new TcpProxy(Number(new URL(database.url).port || 5432));
  await proxy.accept();
  const url = new URL(database.url);
  url.port = String(proxy.port);
  coord = await coordinator('hostile-coordinator', url.toString(), {
    CALL_TIMEOUT_MS: '1000',
    RECOVERY_INTERVAL_MS: '200',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '300',
    LEASE_MS: '2000',
  });
  await coord.start();
  const registered = await postJson(`${coord.url}/v1/participants`, {
    name: 'raw',
    transport: 'http',
    endpoint: `${participantUrl}/tx`,
    actions: [{ name: 'step', modes: ['tcc', 'saga'] }],
  });
  expect(registered.status).toBe(201);
});

afterAll(async () => {
  await coord?.process.kill();
  await proxy?.refuse();
  await closeServer(server);
  await database?.drop();
});

describe('text Postgres cannot store, in a request', () => {
  const branch = { participant: 'raw', action: 'step' };
  const cases: [string, Record<string, unknown>, string][] = [
    ['NUL in metadata', { mode: 'tcc', metadata: { note: `a${NUL}b` } }, 'metadata.note'],
    ['a lone high surrogate in metadata', { mode: 'tcc', metadata: { note: `a${HIGH}` } }, 'metadata.note'],
    ['a lone low surrogate in a key of metadata', { mode: 'tcc', metadata: { [`k${LOW}`]: 1 } }, 'metadata'],
    ['NUL in a branch payload', { mode: 'tcc', branches: [{ ...branch, payload: { x: [1, `y${NUL}`] } }] }, 'branches.0.payload.x.1'],
    ['a lone surrogate in a saga step payload', { mode: 'saga', steps: [{ name: 's1', ...branch, payload: { [`k${HIGH}`]: 1 } }] }, 'steps.0.payload'],
    ['NUL in the gid', { mode: 'tcc', gid: `g${NUL}` }, 'gid'],
  ];

  it.each(cases)('begin with %s is 400 naming the field, and nothing is stored', async (_what, body, field) => {
    const gid = `hostile-${field.replace(/[^A-Za-z0-9]/g, '-')}-${Date.now()}`;
    const answer = await request('POST', '/v1/transactions', { gid, ...body });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ statusCode: 400, error: 'VALIDATION_FAILED', field });
    if (typeof body.gid !== 'string') expect((await request('GET', `/v1/transactions/${gid}`)).status).toBe(404);
    const listed = await request('GET', '/admin/transactions?limit=200');
    expect((listed.body.items as { gid: string }[]).some((t) => t.gid === gid)).toBe(false);
  });

  it('adding a branch, registering a participant and filtering the admin list refuse it too', async () => {
    await request('POST', '/v1/transactions', { mode: 'tcc', gid: 'hostile-interactive' });
    const added = await request('POST', '/v1/transactions/hostile-interactive/branches', { ...branch, payload: { a: `x${NUL}` } });
    expect(added.body).toMatchObject({ statusCode: 400, field: 'payload.a' });
    expect((await view('hostile-interactive')).branches).toEqual([]);

    const registered = await request('POST', '/v1/participants', { name: 'other', transport: 'http', endpoint: `${participantUrl}/tx${NUL}`, actions: [{ name: 'step', modes: ['tcc'] }] });
    expect(registered.body).toMatchObject({ statusCode: 400, field: 'endpoint' });

    const filtered = await request('GET', `/admin/transactions?participant=${encodeURIComponent(`raw${NUL}`)}`);
    expect(filtered.body).toMatchObject({ statusCode: 400, field: 'participant' });
  });
});

describe('participant answers that cannot be stored as they are', () => {
  it('a 2xx saga step answer with NUL: run exactly once, the saga commits, the result is a marker, the transaction flagged', async () => {
    const gid = 'hostile-saga-nul';
    answers.set(gid, { execute: { status: 200, body: '{"note":"a\\u0000b"}' } });
    const begun = await request('POST', '/v1/transactions', { mode: 'saga', gid, wait: true, steps: [{ name: 's1', participant: 'raw', action: 'step', payload: {} }] });
    expect(begun.status).toBe(201);
    expect(begun.body.status).toBe('committed');
    // Recovery runs every 200 ms: a step it re-ran would show here.
    await sleep(1_500);
    expect(callsOf(gid, 'execute')).toBe(1);
    const shown = await view(gid);
    expect(shown.status).toBe('committed');
    expect(shown.needsAttention).toBe(true);
    expect(shown.branches[0].result).toEqual({
      error: 'UNSTORABLE_ANSWER',
      message: "the participant's answer contains text Postgres cannot store (NUL or a lone surrogate); it was not kept",
    });
    const flagged = await request('GET', '/admin/transactions?attention=true&limit=200');
    expect((flagged.body.items as { gid: string }[]).map((t) => t.gid)).toContain(gid);
    const detail = await request('GET', `/admin/transactions/${gid}`);
    expect(detail.body.events).toContainEqual(expect.objectContaining({ type: 'attention', branchId: 's1' }));
  });

  it('a 409 with a lone surrogate is recorded as lastError, the surrogate replaced', async () => {
    const gid = 'hostile-409';
    answers.set(gid, { try: { status: 409, body: '{"message":"no\\ud800 stock","k\\udc00":1}' } });
    const begun = await request('POST', '/v1/transactions', { mode: 'tcc', gid, wait: true, branches: [{ branchId: 'b1', participant: 'raw', action: 'step' }] });
    expect(begun.body.status).toBe('rolled_back');
    const shown = await view(gid);
    expect(shown.reason).toBe('branch_failed');
    expect(shown.branches[0].lastError).toEqual({ message: 'no\ufffd stock', 'k\ufffd': 1 });
    expect(callsOf(gid, 'try')).toBe(1);
  });

  it('interactive: a prepared answer with a lone surrogate is a 201 with the marker, recorded and flagged', async () => {
    const gid = 'hostile-interactive-ok';
    answers.set(gid, { try: { status: 200, body: '["\\udc00"]' } });
    await request('POST', '/v1/transactions', { mode: 'tcc', gid });
    const added = await request('POST', `/v1/transactions/${gid}/branches`, { branchId: 'b1', participant: 'raw', action: 'step' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ branchId: 'b1', status: 'prepared', result: { error: 'UNSTORABLE_ANSWER' } });
    const shown = await view(gid);
    expect(shown.needsAttention).toBe(true);
    expect(shown.branches[0]).toMatchObject({ status: 'prepared', result: { error: 'UNSTORABLE_ANSWER' } });
    expect((await request('POST', `/v1/transactions/${gid}/commit`, { wait: true })).body.status).toBe('committed');
  });
});

describe('a body past the limit', () => {
  it('is answered 413 PAYLOAD_TOO_LARGE to every sender, even one that closes after its request: the body is read first, so no write of it fails', async () => {
    const port = Number(new URL(coord.url).port);
    const body = JSON.stringify({ mode: 'tcc', metadata: { big: 'x'.repeat(3 * 1024 * 1024) } });
    // A connection of its own each (Connection: close), 20 at once, 3 rounds: a server that answered
    // and closed with the body still arriving would reset some of them before their answer was read.
    const answers: string[] = [];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, () => rawHttp(port, { method: 'POST', path: '/v1/transactions', headers: { 'content-type': 'application/json' }, body })),
      );
      for (const r of results) answers.push(r.status === 'fulfilled' ? `${r.value.status} ${(JSON.parse(r.value.text) as { error: string }).error}` : `failed: ${String(r.reason)}`);
    }
    expect(new Set(answers)).toEqual(new Set(['413 PAYLOAD_TOO_LARGE']));
  });
});

describe('admin filters and cursors', () => {
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
  const refused: [string, string][] = [
    ['/admin/transactions?from=0000-00-00', 'from'],
    ['/admin/transactions?from=0000-01-01', 'from'],
    ['/admin/transactions?from=2026-W01', 'from'],
    ['/admin/transactions?to=2026-02-30', 'to'],
    ['/admin/transactions?to=%2B275760-09-13T00:00:00Z', 'to'],
    ['/admin/transactions?to=-271821-04-20', 'to'],
    ['/admin/transactions?from=9999999-01-01', 'from'],
    ['/admin/transactions?limit=0', 'limit'],
    [`/admin/transactions?cursor=${b64('garbage')}`, 'cursor'],
    [`/admin/transactions?cursor=${b64('1|g')}`, 'cursor'],
    [`/admin/transactions?cursor=${b64('+275760-01-01T00:00:00Z|g')}`, 'cursor'],
    [`/admin/transactions?cursor=${b64('0000-01-01T00:00:00.000000Z|g')}`, 'cursor'],
    [`/admin/locks?cursor=${b64(JSON.stringify(['99999-01-01T00:00:00.000000Z', 'g', 'b']))}`, 'cursor'],
    [`/admin/locks?cursor=${b64(JSON.stringify(['2026-01-01T00:00:00.000000Z', 1, 'b']))}`, 'cursor'],
    [`/admin/locks?cursor=${b64('{"lockedAt":"2026-01-01"}')}`, 'cursor'],
    ['/admin/locks?limit=201', 'limit'],
  ];

  it.each(refused)('%s is 400 naming %s', async (path, field) => {
    const answer = await request('GET', path);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'VALIDATION_FAILED', field });
  });

  it('the cursors the API returns still page', async () => {
    const first = await request('GET', '/admin/transactions?limit=1&from=2000-01-01');
    expect(first.status).toBe(200);
    const next = first.body.nextCursor as string;
    expect(typeof next).toBe('string');
    const second = await request('GET', `/admin/transactions?limit=1&cursor=${next}`);
    expect(second.status).toBe(200);
    expect((second.body.items as { gid: string }[])[0].gid).not.toBe((first.body.items as { gid: string }[])[0].gid);
  });
});

describe('a database that refuses connections', () => {
  it('is a 503 STORE_UNAVAILABLE with Retry-After on every route that needs it, and it serves again once the database is back', async () => {
    await proxy.refuse();
    const routes: [string, string, unknown?][] = [
      ['POST', '/v1/transactions', { mode: 'tcc' }],
      ['POST', '/v1/transactions', { mode: 'saga', steps: [{ name: 's1', participant: 'raw', action: 'step' }] }],
      ['GET', '/v1/transactions/hostile-409'],
      ['POST', '/v1/transactions/hostile-interactive/branches', { participant: 'raw', action: 'step' }],
      ['POST', '/v1/transactions/hostile-interactive/commit', {}],
      ['POST', '/v1/transactions/hostile-interactive/rollback', {}],
      ['GET', '/v1/participants'],
      ['POST', '/v1/participants', { name: 'other', transport: 'http', endpoint: `${participantUrl}/tx`, actions: [{ name: 'step', modes: ['tcc'] }] }],
      ['GET', '/admin/transactions'],
      ['GET', '/admin/transactions/hostile-409'],
      ['GET', '/admin/locks'],
      ['GET', '/admin/stats'],
      ['POST', '/admin/transactions/hostile-interactive/retry', {}],
      ['POST', '/admin/transactions/hostile-interactive/rollback', {}],
    ];
    for (const [method, path, body] of routes) {
      const answer = await request(method, path, body);
      expect({ route: `${method} ${path}`, status: answer.status, error: answer.body.error, retryAfter: answer.headers.get('retry-after') }).toEqual({
        route: `${method} ${path}`,
        status: 503,
        error: 'STORE_UNAVAILABLE',
        retryAfter: '1',
      });
    }
    expect((await request('GET', '/health/ready')).status).toBe(503);
    // The live feed needs no database: it still opens.
    const stream = await fetch(`${coord.url}/admin/stream`, { signal: AbortSignal.timeout(5_000) });
    expect(stream.status).toBe(200);
    await stream.body?.cancel();

    await proxy.accept();
    await until('the coordinator to be ready again', async () => ((await request('GET', '/health/ready')).status === 200 ? true : undefined), 20_000);
    const begun = await request('POST', '/v1/transactions', { mode: 'tcc', gid: 'hostile-after-outage' });
    expect(begun.status).toBe(201);
    expect((await request('GET', '/v1/transactions/hostile-after-outage')).status).toBe(200);
  });
});
