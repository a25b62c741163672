/**
 * The front door against real coordinators over real sockets (docs/security.md "The front door"): another
 * site's page cannot change anything with the operator's saved console login (a real chromium
 * logged in to the console, attacked from pages of other origins); an unauthenticated request
 * is refused before its body is read; slow connections are closed; non-JSON bodies, wrong
 * methods, percent-encoded admin paths and refused-request floods get their stable answers.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ParticipantAdminView, type ParticipantView, type TransactionCounts, type TransactionView } from '@nest-dtx/protocol';
import { coordinator, generateApiKeys, getJson, postJson, type CoordinatorHandle, type StackApiKeys } from '../../scripts/lib/stack.js';
import { describeInBrowser, launchChromium } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { closeServer } from '../support/servers.js';

let database: TestDatabase;
let coord: CoordinatorHandle;
let keys: StackApiKeys;

const basic = (password: string) => `Basic ${Buffer.from(`operator:${password}`).toString('base64')}`;
const LONG_TIMEOUT_MS = 600_000;
/** Refusals (401) one address may have a minute on the keyed coordinator: room for this file's own (they grow with the routes: the cross-site test tries every state-changing one), then the limit's test uses it up. */
const REFUSALS_PER_MINUTE = 80;
/** The participant the cross-site attacks try to change. */
const TARGET_PARTICIPANT = 'fd-target';

interface Answer {
  status: number;
  headers: Headers;
  json: { error?: string; message?: string; token?: string | null } | null;
}

async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  let json: Answer['json'] = null;
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    json = null;
  }
  return { status: response.status, headers: response.headers, json };
}

beforeAll(async () => {
  keys = generateApiKeys();
  database = await createTestDatabase('front_door');
  coord = await coordinator('front-door-coordinator', database.url, { API_KEYS: keys.API_KEYS, AUTH_FAILURE_LIMIT_PER_MINUTE: String(REFUSALS_PER_MINUTE) });
  await coord.start();
  // What the attacks aim at, and what the later tests read (they run without chromium too).
  const registered = await postJson(
    `${coord.url}/v1/participants`,
    { name: TARGET_PARTICIPANT, transport: 'http', endpoint: 'http://127.0.0.1:9/tx', actions: [{ name: 'a', modes: ['tcc'] }] },
    keys.participant,
  );
  expect(registered.status).toBe(201);
  for (const gid of ['fd-victim', 'fd-admin-victim', 'fd-console']) {
    expect((await postJson(`${coord.url}/v1/transactions`, { mode: 'tcc', gid, timeoutMs: LONG_TIMEOUT_MS }, keys.client)).status).toBe(201);
  }
});

afterAll(async () => {
  await coord?.process.kill();
  await database?.drop();
});

/** A page of another origin that tries `routes` with every kind of request a page may send without asking. */
function attackPage(coordinatorUrl: string, routes: string[]): string {
  const script = `
const base = ${JSON.stringify(coordinatorUrl)};
const routes = ${JSON.stringify(routes)};
const settle = (promise) => Promise.race([promise, new Promise((done) => setTimeout(done, 10000))]);
async function attack() {
  const pending = [];
  let n = 0;
  for (const route of routes) {
    for (const enctype of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']) {
      const frame = document.createElement('iframe');
      frame.name = 'frame' + n++;
      document.body.append(frame);
      pending.push(settle(new Promise((done) => frame.addEventListener('load', done, { once: true }))));
      const form = document.createElement('form');
      form.method = 'post';
      form.action = base + route;
      form.enctype = enctype;
      form.target = frame.name;
      // The classic JSON-in-a-text/plain-form body: {"mode":"tcc","overlapSeconds":0,"x":"="}
      const input = document.createElement('input');
      input.name = '{"mode":"tcc","overlapSeconds":0,"x":"';
      input.value = '"}';
      form.append(input);
      document.body.append(form);
      form.submit();
    }
    pending.push(settle(fetch(base + route, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"mode":"tcc"}' }).catch(() => null)));
    pending.push(settle(fetch(base + route, { method: 'POST', mode: 'cors', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"mode":"tcc"}' }).catch(() => null)));
  }
  await Promise.all(pending);
  document.title = 'attack-done';
}
attack();`;
  return `<!doctype html><html><head><title>cat pictures</title></head><body><script>${script}</script></body></html>`;
}

// A real chromium: without it, this block is one failing test naming the fix, and the rest of the file runs.
describeInBrowser('another site cannot change anything with the operator\'s console login', () => {
  let browser: Browser;
  let evil: Server;
  let evilPort: number;
  let context: BrowserContext;

  beforeAll(async () => {
    browser = await launchChromium();
    evil = createServer();
    await new Promise<void>((listening) => evil.listen(0, '127.0.0.1', listening));
    evilPort = (evil.address() as AddressInfo).port;
    // The operator is logged in to the console: the browser sends the admin key (Basic) to the
    // coordinator's origin with every request, whichever page makes it.
    context = await browser.newContext({ httpCredentials: { username: 'operator', password: keys.admin, origin: coord.url, send: 'always' } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await closeServer(evil);
  });

  it('refuses every state-changing route to form posts and fetches from other origins; nothing changes', async () => {
    // Every route that changes state, from the API's own document (so a new one is attacked too).
    const document = await getJson<{ paths: Record<string, Record<string, unknown>> }>(`${coord.url}/docs-json`, keys.admin);
    const templates = Object.entries(document.paths)
      .filter(([, operations]) => ['post', 'put', 'patch', 'delete'].some((method) => method in operations))
      .map(([path]) => path);
    expect(templates).toEqual(
      expect.arrayContaining(['/v1/transactions', '/v1/transactions/{gid}/commit', '/v1/transactions/{gid}/rollback', '/admin/transactions/{gid}/retry', '/admin/transactions/{gid}/rollback', '/admin/participants/{name}/rotate-secret', '/admin/participants/{name}/release']),
    );
    const routes = templates.map((path) => path.replace('/admin/transactions/{gid}', '/admin/transactions/fd-admin-victim').replace('{gid}', 'fd-victim').replace('{name}', TARGET_PARTICIPANT));

    const before = {
      stats: await getJson<TransactionCounts>(`${coord.url}/admin/stats`, keys.admin),
      participants: await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin),
    };
    const target = before.participants.find((p) => p.name === TARGET_PARTICIPANT);
    expect(target).toBeDefined();

    evil.removeAllListeners('request');
    evil.on('request', (_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end(attackPage(coord.url, routes)));
    // localhost is another site than 127.0.0.1; another port of 127.0.0.1 is the same site, another origin.
    const answered: Record<string, number[]> = {};
    for (const origin of [`http://localhost:${evilPort}`, `http://127.0.0.1:${evilPort}`]) {
      const page = await context.newPage();
      const statuses: number[] = [];
      page.on('response', (response) => {
        if (response.url().startsWith(coord.url) && response.request().method() === 'POST') statuses.push(response.status());
      });
      await page.goto(`${origin}/cats.html`);
      await page.waitForFunction('document.title === "attack-done"', undefined, { timeout: 120_000 });
      answered[origin] = statuses;
      await page.close();
    }
    const summary = Object.entries(answered).map(([origin, statuses]) => `${origin}: ${statuses.length} POSTs answered, statuses ${[...new Set(statuses)].join('/')}`);
    console.log(`figure: cross-site attack on ${routes.length} routes x 5 kinds of request; ${summary.join('; ')}`);
    for (const statuses of Object.values(answered)) {
      // Form posts and no-cors fetches reach the coordinator (a cors fetch of JSON stops at its preflight); none succeeds.
      expect(statuses.length).toBeGreaterThanOrEqual(routes.length * 3);
      expect(statuses.filter((status) => status < 400)).toEqual([]);
      expect(new Set(statuses)).toEqual(new Set([403]));
    }

    const victim = await getJson<TransactionView>(`${coord.url}/v1/transactions/fd-victim`, keys.client);
    expect(victim).toMatchObject({ status: 'active', branches: [] });
    expect(await getJson<TransactionView>(`${coord.url}/admin/transactions/fd-admin-victim`, keys.admin)).toMatchObject({ status: 'active' });
    expect((await getJson<TransactionCounts>(`${coord.url}/admin/stats`, keys.admin)).total).toBe(before.stats.total);
    const after = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`, keys.admin);
    expect(after).toEqual(before.participants);
    const names = (await getJson<ParticipantView[]>(`${coord.url}/v1/participants`, keys.client)).map((p) => p.name);
    expect(names).toEqual(before.participants.map((p) => p.name));
  });

  it('lets the console itself (same origin, Basic login) roll a transaction back', async () => {
    const operator = await browser.newContext({ httpCredentials: { username: 'operator', password: keys.admin } });
    try {
      const page = await operator.newPage();
      await page.goto(`${coord.url}/admin#/tx/fd-console`);
      await page.locator('[data-testid="tx-header"][data-gid="fd-console"][data-status="active"]').waitFor();
      await page.locator('button[data-action="rollback"]').click();
      await page.locator('#confirm-dialog[open]').waitFor();
      await page.locator('#confirm-ok').click();
      await page.locator('[data-testid="tx-header"][data-gid="fd-console"][data-status="rolled_back"]').waitFor();
      expect(await getJson<TransactionView>(`${coord.url}/admin/transactions/fd-console`, keys.admin)).toMatchObject({ status: 'rolled_back', reason: 'admin' });
    } finally {
      await operator.close();
    }
  });
});

describe('Basic credentials and the console token', () => {
  it('refuses a POST with Basic alone (401, no Basic challenge), and takes it with the token of GET /admin/session', async () => {
    await postJson(`${coord.url}/v1/transactions`, { mode: 'tcc', gid: 'fd-basic', timeoutMs: LONG_TIMEOUT_MS }, keys.client);
    const rollback = (headers: Record<string, string>) => send(`${coord.url}/admin/transactions/fd-basic/rollback`, { method: 'POST', headers });

    const alone = await rollback({ authorization: basic(keys.admin) });
    expect([alone.status, alone.json?.error]).toEqual([401, ErrorCode.UNAUTHENTICATED]);
    expect(alone.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect((await rollback({ authorization: basic(keys.admin), 'x-dtx-console-token': 'not-the-token' })).status).toBe(401);

    const session = await send(`${coord.url}/admin/session`, { headers: { authorization: basic(keys.admin) } });
    expect(session.status).toBe(200);
    expect(session.headers.get('access-control-allow-origin')).toBeNull();
    expect(session.headers.get('cache-control')).toBe('no-store');
    const token = session.json?.token;
    expect(typeof token).toBe('string');
    // The token is the key's: the same through Bearer, and only admin may ask for one.
    expect((await send(`${coord.url}/admin/session`, { headers: { authorization: `Bearer ${keys.admin}` } })).json?.token).toBe(token);
    expect((await send(`${coord.url}/admin/session`, { headers: { authorization: `Bearer ${keys.client}` } })).status).toBe(403);

    const withToken = await rollback({ authorization: basic(keys.admin), 'x-dtx-console-token': token as string });
    expect(withToken.status).toBe(200);
    expect(['rolling_back', 'rolled_back']).toContain((await getJson<TransactionView>(`${coord.url}/v1/transactions/fd-basic`, keys.client)).status);
    // Bearer needs no token; Basic still reads.
    expect((await send(`${coord.url}/admin/transactions/fd-basic/retry`, { method: 'POST', headers: { authorization: `Bearer ${keys.admin}` } })).status).not.toBe(401);
    expect((await send(`${coord.url}/admin/stats`, { headers: { authorization: basic(keys.admin) } })).status).toBe(200);
  });
});

describe('stable answers at the door', () => {
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE to a body that is not JSON, and begins nothing', async () => {
    const before = (await getJson<TransactionCounts>(`${coord.url}/admin/stats`, keys.admin)).total;
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const answer = await send(`${coord.url}/v1/transactions`, { method: 'POST', headers: { ...bearer(keys.client), 'content-type': type }, body: '{"mode":"tcc"}' });
      expect([type, answer.status, answer.json?.error]).toEqual([type, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE]);
    }
    expect((await getJson<TransactionCounts>(`${coord.url}/admin/stats`, keys.admin)).total).toBe(before);
    // No body at all stays fine (commit and rollback bodies are optional).
    await postJson(`${coord.url}/v1/transactions`, { mode: 'tcc', gid: 'fd-nobody', timeoutMs: LONG_TIMEOUT_MS }, keys.client);
    expect((await send(`${coord.url}/v1/transactions/fd-nobody/rollback`, { method: 'POST', headers: bearer(keys.client) })).status).toBe(200);
  });

  it('answers 403 CROSS_SITE_REQUEST to cross-site and same-site fetch metadata and to a foreign Origin, even with a valid key', async () => {
    const post = (headers: Record<string, string>) => send(`${coord.url}/v1/transactions`, { method: 'POST', headers: { ...bearer(keys.client), 'content-type': 'application/json', ...headers }, body: '{"mode":"tcc"}' });
    const foreign: Record<string, string>[] = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'http://evil.example' }, { origin: 'null' }];
    for (const headers of foreign) {
      const answer = await post(headers);
      expect([headers, answer.status, answer.json?.error]).toEqual([headers, 403, ErrorCode.CROSS_SITE_REQUEST]);
    }
    expect((await post({ origin: coord.url, 'sec-fetch-site': 'same-origin' })).status).toBe(201);
    expect((await send(`${coord.url}/v1/transactions/fd-victim`, { headers: { ...bearer(keys.client), 'sec-fetch-site': 'cross-site' } })).status).toBe(200);
  });

  it('answers 405 METHOD_NOT_ALLOWED with Allow to a wrong method on an existing path, 404 elsewhere', async () => {
    const wrong = await send(`${coord.url}/v1/transactions`, { method: 'DELETE', headers: bearer(keys.client) });
    expect([wrong.status, wrong.json?.error, wrong.headers.get('allow')]).toEqual([405, ErrorCode.METHOD_NOT_ALLOWED, 'POST']);
    const read = await send(`${coord.url}/v1/transactions/fd-victim`, { method: 'PUT', headers: { ...bearer(keys.client), 'content-type': 'application/json' }, body: '{}' });
    expect([read.status, read.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    expect((await send(`${coord.url}/v1/nothing-here`, { headers: bearer(keys.client) })).status).toBe(404);
  });

  it('guards every spelling of an admin path: /%64ocs-json needs the admin key', async () => {
    for (const path of ['/%64ocs-json', '/DOCS-JSON', '/docs-json/', '/%61dmin/stats', '/%6detrics']) {
      expect([path, (await send(`${coord.url}${path}`)).status]).toEqual([path, 401]);
      expect([path, (await send(`${coord.url}${path}`, { headers: bearer(keys.client) })).status]).toEqual([path, 403]);
    }
    expect((await send(`${coord.url}/%64ocs-json`, { headers: bearer(keys.admin) })).status).toBe(200);
  });
});

/** utime + stime of a process in ms (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Opens a connection, sends `head` and `firstChunk`, and resolves with the first line answered and whether the rest was ever sent. */
function sendHeadOnly(port: number, head: string, firstChunk: string): Promise<{ statusLine: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1', () => socket.write(head + firstChunk));
    let received = '';
    socket.on('data', (data) => {
      received += String(data);
      if (received.includes('\r\n')) {
        socket.destroy();
        resolve({ statusLine: received.split('\r\n')[0], ms: performance.now() - started });
      }
    });
    socket.on('error', reject);
    socket.setTimeout(20_000, () => reject(new Error('no answer before the body was sent')));
  });
}

describe('an unauthenticated request is refused before its body is read', () => {
  it('answers 401 to 1 MB bodies nested 500,000 deep after their first chunk, while /health/live keeps answering', async () => {
    const depth = 500_000;
    const body = '['.repeat(depth) + ']'.repeat(depth);
    const head = `POST /v1/transactions HTTP/1.1\r\nHost: 127.0.0.1:${coord.port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const pid = coord.process.child?.pid as number;
    const cpuBefore = cpuMs(pid);

    const latencies: number[] = [];
    let probing = true;
    const probes = (async () => {
      while (probing) {
        const started = performance.now();
        expect((await fetch(`${coord.url}/health/live`)).status).toBe(200);
        latencies.push(performance.now() - started);
      }
    })();
    // Only the headers and the first 64 KiB are ever sent: the answer cannot have waited for the rest.
    const refusals = await Promise.all(Array.from({ length: 6 }, () => sendHeadOnly(coord.port, head, body.slice(0, 65_536))));
    // And one that sends all of it: still 401, with nothing parsed.
    const whole = await new Promise<string>((resolve, reject) => {
      const socket: Socket = connect(coord.port, '127.0.0.1', () => socket.write(head + body));
      let received = '';
      socket.on('data', (data) => {
        received += String(data);
        if (received.includes('\r\n')) {
          socket.destroy();
          resolve(received.split('\r\n')[0]);
        }
      });
      // The server may close once it has answered, before the client finished writing.
      socket.on('error', (error) => (received.includes('\r\n') ? undefined : reject(error)));
    });
    probing = false;
    await probes;
    const cpu = cpuMs(pid) - cpuBefore;

    for (const refusal of refusals) expect(refusal.statusLine).toBe('HTTP/1.1 401 Unauthorized');
    expect(whole).toBe('HTTP/1.1 401 Unauthorized');
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(
      `figure: unauthenticated 1 MB bodies nested ${depth} deep: ${refusals.length} sending their first 64 KiB only got 401 after ${refusals.map((r) => r.ms.toFixed(1)).join(', ')} ms, 1 sending all of it got 401 too; ` +
        `/health/live meanwhile: ${latencies.length} probes, median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms; coordinator CPU ${cpu} ms`,
    );
  });
});

describe('slow connections', () => {
  let slow: CoordinatorHandle;
  const TIMEOUTS = { HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_IDLE_TIMEOUT_MS: '3000', HTTP_KEEP_ALIVE_TIMEOUT_MS: '500' };

  beforeAll(async () => {
    // Without keys (loopback only): the clocks do not depend on authentication.
    slow = await coordinator('front-door-slow-coordinator', database.url, { ...TIMEOUTS, WAIT_MAX_MS: '1000', CALL_TIMEOUT_MS: '500', LEASE_MS: '2000', LOG_LEVEL: 'warn' });
    await slow.start();
  });

  afterAll(async () => {
    await slow?.process.kill();
  });

  /** Opens a connection that behaves as `behave` says; resolves when the server closes it, with what it answered. */
  function closedByServer(behave: (socket: Socket) => void): Promise<{ ms: number; answer: string }> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const socket = connect(slow.port, '127.0.0.1', () => behave(socket));
      let answer = '';
      socket.on('data', (data) => (answer += String(data)));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ ms: performance.now() - started, answer: answer.split('\r\n')[0] }));
      // Far past every timeout: a connection still open then was never going to be closed.
      setTimeout(() => reject(new Error('the server kept the connection open')), 30_000).unref();
    });
  }

  it('closes connections that send nothing, part of their headers or body, a body byte by byte, or idle after an answer', async () => {
    const head = `POST /v1/transactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
    const cases: [string, (socket: Socket) => void][] = [
      ['sends nothing', () => undefined],
      ['partial headers', (socket) => socket.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n')],
      ['headers a byte every 200 ms', (socket) => {
        const text = 'GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200);
        let at = 0;
        const timer = setInterval(() => (socket.destroyed || at >= text.length ? clearInterval(timer) : socket.write(text[at++])), 200);
      }],
      ['partial body', (socket) => socket.write(`${head}{"mode":`)],
      ['body a byte every 200 ms', (socket) => {
        socket.write(head);
        const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(' ')), 200);
      }],
      ['idle keep-alive after an answer', (socket) => socket.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')],
    ];
    const closed = await Promise.all(cases.map(([, behave]) => closedByServer(behave)));
    console.log(
      `figure: slow connections (headers ${TIMEOUTS.HTTP_HEADERS_TIMEOUT_MS} ms, request ${TIMEOUTS.HTTP_REQUEST_TIMEOUT_MS} ms, idle ${TIMEOUTS.HTTP_IDLE_TIMEOUT_MS} ms, keep-alive ${TIMEOUTS.HTTP_KEEP_ALIVE_TIMEOUT_MS} ms) closed by the server after: ` +
        cases.map(([name], i) => `${name} ${closed[i].ms.toFixed(0)} ms (${closed[i].answer || 'no answer'})`).join('; '),
    );
    expect(closed[5].answer).toBe('HTTP/1.1 200 OK');
  });

  it('applies the cross-site and content-type rules without keys too', async () => {
    const post = (headers: Record<string, string>, body: string) => send(`${slow.url}/v1/transactions`, { method: 'POST', headers, body });
    expect((await post({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, '{"mode":"tcc"}')).json?.error).toBe(ErrorCode.CROSS_SITE_REQUEST);
    expect((await post({ 'content-type': 'text/plain' }, '{"mode":"tcc"}')).json?.error).toBe(ErrorCode.UNSUPPORTED_MEDIA_TYPE);
    expect((await post({ 'content-type': 'application/json' }, '{"mode":"tcc"}')).status).toBe(201);
    expect((await send(`${slow.url}/admin/session`)).json).toEqual({ token: null });
  });
});

describe('refused-request limit', () => {
  it('answers 429 RATE_LIMITED with Retry-After once an address used up its refusals; a valid key still passes', async () => {
    const statuses: number[] = [];
    let limited: Answer | null = null;
    for (let i = 0; i < 2 * REFUSALS_PER_MINUTE && limited === null; i++) {
      const answer = await send(`${coord.url}/v1/transactions/fd-victim`, { headers: { authorization: 'Bearer not-a-key-0123456789' } });
      statuses.push(answer.status);
      if (answer.status === 429) limited = answer;
    }
    console.log(`figure: refused-request limit ${REFUSALS_PER_MINUTE}/min: ${statuses.filter((s) => s === 401).length} answers 401 (this file's earlier refusals counted too), then 429`);
    expect(new Set(statuses.slice(0, -1))).toEqual(new Set([401]));
    expect(limited?.json?.error).toBe(ErrorCode.RATE_LIMITED);
    const retryAfter = Number(limited?.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect((await send(`${coord.url}/v1/transactions/fd-victim`, { headers: { authorization: `Bearer ${keys.client}` } })).status).toBe(200);
    expect((await send(`${coord.url}/health/live`)).status).toBe(200);
  });
});
