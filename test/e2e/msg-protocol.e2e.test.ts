/**
 * The msg mode (PROTOCOL.md 3.1) from the page alone: a coordinator and two bare node:http
 * participants written without the SDK — a shop (the caller, whose `check-order` action answers
 * the check-back) and a warehouse (a branch, `ship`). Every call's signature is verified with
 * node:crypto (5.5). Covers validation, submit and rollback, the check-back in both directions
 * and with no answer, a 409 to execute, and idempotent begins.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { coordinator, postJson, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { signatureProblem } from '../support/page-signature.js';

interface ReceivedCall {
  participant: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** Per gid and phase, the answers a participant gives in turn (the last one repeats). */
type Script = Partial<Record<string, { status: number; body?: unknown }[]>>;

const calls: ReceivedCall[] = [];
const refused: string[] = [];
const scripts = new Map<string, Script>();
const secrets = new Map<string, string>();
const servers: Server[] = [];
const urls = new Map<string, string>();
let database: TestDatabase | undefined;
let coord: CoordinatorHandle;


function startParticipant(name: string): Promise<void> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const problem = signatureProblem(secrets.get(name) ?? '', req.headers, raw);
      if (problem) {
        refused.push(`${name} ${req.url}: ${problem}`);
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'SIGNATURE_INVALID' }));
        return;
      }
      const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      calls.push({ participant: name, path: req.url ?? '', headers: req.headers, body });
      const answers = scripts.get(String(body.gid))?.[`${name} ${String(body.phase)}`] ?? [{ status: 200, body: { ok: true } }];
      const done = calls.filter((c) => c.participant === name && c.body.gid === body.gid && c.body.phase === body.phase).length;
      const answer = answers[Math.min(done - 1, answers.length - 1)];
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body ?? null));
    });
  });
  servers.push(server);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      urls.set(name, `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/tx`);
      resolve();
    });
  });
}

async function register(name: string, actions: { name: string; modes: string[] }[]): Promise<void> {
  const answer = await postJson<{ signingSecret: string }>(`${coord.url}/v1/participants`, { name, transport: 'http', endpoint: urls.get(name), actions });
  expect(answer.status).toBe(201);
  secrets.set(name, answer.body.signingSecret);
}

const begin = <T = TransactionView>(body: Record<string, unknown>) => postJson<T>(`${coord.url}/v1/transactions`, body);
const view = async (gid: string): Promise<TransactionView> => (await (await fetch(`${coord.url}/v1/transactions/${gid}`)).json()) as TransactionView;
const ended = (gid: string) =>
  until(`${gid} to end`, async () => {
    const v = await view(gid);
    return v.status === 'committed' || v.status === 'rolled_back' ? v : undefined;
  }, 30_000, 100);
const callsOf = (gid: string) => calls.filter((c) => c.body.gid === gid);

/** A message for one warehouse branch, checked back with the shop's `check-order`. */
const message = (gid: string, extra: Record<string, unknown> = {}) => ({
  mode: 'msg',
  gid,
  timeoutMs: 1_000,
  check: { participant: 'shop', action: 'check-order' },
  branches: [{ branchId: 'ship-1', participant: 'warehouse', action: 'ship', payload: { sku: 'book', qty: 1 } }],
  ...extra,
});

beforeAll(async () => {
  await Promise.all([startParticipant('shop'), startParticipant('warehouse')]);
  database = await createTestDatabase('msg_protocol');
  coord = await coordinator('msg-protocol-coordinator', database.url, {
    CALL_TIMEOUT_MS: '500',
    RECOVERY_INTERVAL_MS: '100',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '200',
    ATTENTION_AFTER_ATTEMPTS: '3',
  });
  await coord.start();
  await register('shop', [
    { name: 'check-order', modes: ['msg'] },
    { name: 'reserve', modes: ['tcc'] },
  ]);
  await register('warehouse', [
    { name: 'ship', modes: ['msg'] },
    { name: 'hold', modes: ['tcc'] },
  ]);
});

afterAll(async () => {
  expect(refused).toEqual([]);
  await coord?.process.kill();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await database?.drop();
});

describe('msg: bad input is a 400 naming the field, and creates nothing', () => {
  it.each([
    ['branches missing', { branches: undefined }, 'branches', 'VALIDATION_FAILED'],
    ['check missing', { check: undefined }, 'check', 'VALIDATION_FAILED'],
    ['check participant unknown', { check: { participant: 'nobody', action: 'check-order' } }, 'check.participant', 'UNKNOWN_PARTICIPANT'],
    ['check action not registered for msg', { check: { participant: 'shop', action: 'reserve' } }, 'check.action', 'UNKNOWN_ACTION'],
    ['check without its action', { check: { participant: 'shop' } }, 'check.action', 'VALIDATION_FAILED'],
    ['a branch action not registered for msg', { branches: [{ participant: 'warehouse', action: 'hold' }] }, 'branches.0.action', 'UNKNOWN_ACTION'],
    ['the reserved branchId check', { branches: [{ branchId: 'check', participant: 'warehouse', action: 'ship' }] }, 'branches.0.branchId', 'VALIDATION_FAILED'],
    ['submit not a boolean', { submit: 'yes' }, 'submit', 'VALIDATION_FAILED'],
  ])('%s', async (_name, change, field, code) => {
    const gid = `msg-bad-${field.replace(/\W/g, '-')}-${code}`;
    const answer = await begin<{ error: string; field?: string; message: string }>(message(gid, change));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(code);
    expect(answer.body.field).toBe(field);
    expect((await fetch(`${coord.url}/v1/transactions/${gid}`)).status).toBe(404);
  });

  it('check and submit belong to msg alone', async () => {
    const tcc = { mode: 'tcc', branches: [{ participant: 'warehouse', action: 'hold' }] };
    const withCheck = await begin<{ error: string; message: string }>({ ...tcc, check: { participant: 'shop', action: 'check-order' } });
    expect([withCheck.status, withCheck.body.error]).toEqual([400, 'VALIDATION_FAILED']);
    expect(withCheck.body.message).toContain('check');
    const withSubmit = await begin<{ error: string; message: string }>({ ...tcc, submit: true });
    expect([withSubmit.status, withSubmit.body.error]).toEqual([400, 'VALIDATION_FAILED']);
    expect(withSubmit.body.message).toContain('submit');
  });
});

describe('msg: the caller decides', () => {
  it('prepared: created active with its branches prepared, calls nobody until the commit, then execute reaches every branch', async () => {
    const gid = 'msg-commit';
    const created = await begin(message(gid, { timeoutMs: 60_000 }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ mode: 'msg', status: 'active', branches: [{ branchId: 'ship-1', status: 'prepared' }] });
    expect(callsOf(gid)).toEqual([]);

    const committed = await postJson<TransactionView>(`${coord.url}/v1/transactions/${gid}/commit`, { wait: true });
    expect(committed.status).toBe(200);
    expect(committed.body).toMatchObject({ status: 'committed', branches: [{ branchId: 'ship-1', status: 'committed' }] });
    const received = callsOf(gid);
    expect(received.map((c) => [c.participant, c.path, c.headers['webhook-id']])).toEqual([['warehouse', '/tx/ship/execute', `${gid}/ship-1/execute`]]);
    expect(received[0].body).toEqual({ gid, branchId: 'ship-1', mode: 'msg', action: 'ship', phase: 'execute', payload: { sku: 'book', qty: 1 } });
  });

  it('rolled back by the caller: rolled_back (client), and no one is called, not even the check', async () => {
    const gid = 'msg-rollback';
    await begin(message(gid, { timeoutMs: 60_000 }));
    const answer = await postJson<TransactionView>(`${coord.url}/v1/transactions/${gid}/rollback`, { wait: true });
    expect(answer.body).toMatchObject({ status: 'rolled_back', reason: 'client', branches: [{ status: 'rolled_back' }] });
    expect(callsOf(gid)).toEqual([]);
    const late = await postJson<{ error: string }>(`${coord.url}/v1/transactions/${gid}/commit`, {});
    expect([late.status, late.body.error]).toEqual([409, 'TX_ALREADY_DECIDED']);
  });

  it('"submit": true is a durable fan-out: delivered with no commit call', async () => {
    const gid = 'msg-submit';
    const answer = await begin(
      message(gid, {
        submit: true,
        wait: true,
        branches: [
          { branchId: 'a', participant: 'warehouse', action: 'ship', payload: { n: 1 } },
          { branchId: 'b', participant: 'warehouse', action: 'ship', payload: { n: 2 } },
        ],
      }),
    );
    expect(answer.status).toBe(201);
    expect(answer.body.status).toBe('committed');
    expect(callsOf(gid).map((c) => c.headers['webhook-id']).sort()).toEqual([`${gid}/a/execute`, `${gid}/b/execute`]);
    expect(callsOf(gid).some((c) => c.body.phase === 'check')).toBe(false);
  });

  it('the same gid and body again returns the message (200); another body is 409 GID_CONFLICT', async () => {
    const gid = 'msg-again';
    expect((await begin(message(gid, { timeoutMs: 60_000 }))).status).toBe(201);
    expect((await begin(message(gid, { timeoutMs: 60_000 }))).status).toBe(200);
    const other = await begin<{ error: string }>(message(gid, { timeoutMs: 60_000, check: { participant: 'warehouse', action: 'ship' } }));
    expect([other.status, other.body.error]).toEqual([409, 'GID_CONFLICT']);
    await postJson(`${coord.url}/v1/transactions/${gid}/rollback`, {});
  });

  it('a 409 to execute is a participant bug: retried, flagged for attention, delivered once it answers 2xx', async () => {
    const gid = 'msg-execute-409';
    scripts.set(gid, { 'warehouse execute': [{ status: 409, body: { message: 'nope' } }, { status: 409 }, { status: 409 }, { status: 409 }, { status: 200 }] });
    await begin(message(gid, { submit: true }));
    const done = await ended(gid);
    expect(done.status).toBe('committed');
    expect(done.needsAttention).toBe(true);
    expect(callsOf(gid).filter((c) => c.body.phase === 'execute')).toHaveLength(5);
  });
});

describe('msg: at its deadline the coordinator asks, and never guesses', () => {
  it('the check answers 2xx (the local transaction committed): the message is delivered', async () => {
    const gid = 'msg-check-yes';
    await begin(message(gid));
    const done = await ended(gid);
    expect(done).toMatchObject({ status: 'committed', reason: null, branches: [{ status: 'committed' }] });
    const [check, ...rest] = callsOf(gid);
    expect([check.participant, check.path, check.headers['webhook-id']]).toEqual(['shop', '/tx/check-order/check', `${gid}/check/check`]);
    expect(check.body).toEqual({ gid, branchId: 'check', mode: 'msg', action: 'check-order', phase: 'check', payload: {} });
    expect(rest.map((c) => `${c.participant} ${String(c.body.phase)}`)).toEqual(['warehouse execute']);
  });

  it('the check answers 409 (it did not, and never will): rolled back, reason timeout, nothing delivered', async () => {
    const gid = 'msg-check-no';
    scripts.set(gid, { 'shop check': [{ status: 409, body: { reason: 'not_committed' } }] });
    await begin(message(gid));
    const done = await ended(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'timeout', branches: [{ status: 'rolled_back' }] });
    expect(callsOf(gid).map((c) => `${c.participant} ${String(c.body.phase)}`)).toEqual(['shop check']);
    const late = await postJson<{ error: string }>(`${coord.url}/v1/transactions/${gid}/commit`, {});
    expect([late.status, late.body.error]).toEqual([409, 'TX_ALREADY_DECIDED']);
  });

  it('a check with no useful answer is asked again, the message staying active meanwhile', async () => {
    const gid = 'msg-check-later';
    scripts.set(gid, { 'shop check': [{ status: 503 }, { status: 500 }, { status: 503 }, { status: 200 }] });
    await begin(message(gid));
    await until(`${gid}: the first check`, () => Promise.resolve(callsOf(gid).length > 0 ? true : undefined), 10_000, 20);
    expect((await view(gid)).status).toBe('active');
    const done = await ended(gid);
    expect(done.status).toBe('committed');
    expect(callsOf(gid).map((c) => `${c.participant} ${String(c.body.phase)}`)).toEqual(['shop check', 'shop check', 'shop check', 'shop check', 'warehouse execute']);
    // Three unanswered checks reach ATTENTION_AFTER_ATTEMPTS: an operator sees it.
    expect(done.needsAttention).toBe(true);
  });

  it('an operator may still roll back an active message (reason admin), and nothing is called', async () => {
    const gid = 'msg-admin';
    await begin(message(gid, { timeoutMs: 60_000 }));
    const answer = await postJson<TransactionView>(`${coord.url}/admin/transactions/${gid}/rollback`, {});
    expect(answer.status).toBe(200);
    const done = await ended(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'admin' });
    expect(callsOf(gid)).toEqual([]);
  });
});
