/**
 * A participant written without the SDK: a bare node:http server that follows PROTOCOL.md 5.1
 * by hand, and verifies every call's signature (5.5) with node:crypto from the page alone (none
 * of the project's signing code). Proves the coordinator needs nothing but the documented contract.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient, type BranchRequest } from '@nest-dtx/sdk';
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
import { closeServer } from '../support/servers.js';
import { signatureProblem } from '../support/page-signature.js';

interface ReceivedCall {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** How the raw participant answers: per phase, a list of answers used in turn (the last one repeats). */
type Script = Partial<Record<string, { status: number; body?: unknown; delayMs?: number }[]>>;

const calls: ReceivedCall[] = [];
/** Calls refused with 401 because their signature did not verify, and why. */
const refused: { path: string; why: string }[] = [];
const scripts = new Map<string, Script>();
/** The raw participant's signing secret, from its registration answer (PROTOCOL.md 4). */
let signingSecret = '';

let server: Server;
let rawUrl = '';
let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: AccountHandle;
let client: TransactionClient;

function startRawParticipant(): Promise<void> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      // Verify before anything else: an unverified call changes nothing and is not counted.
      const problem = signatureProblem(signingSecret, req.headers, raw);
      if (problem) {
        refused.push({ path: req.url ?? '', why: problem });
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'SIGNATURE_INVALID', message: problem }));
        return;
      }
      const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      calls.push({ path: req.url ?? '', headers: req.headers, body });
      const script = scripts.get(String(body.gid)) ?? {};
      const answers = script[String(body.phase)] ?? [{ status: 200, body: { ok: true } }];
      const done = calls.filter((c) => c.body.gid === body.gid && c.body.phase === body.phase).length;
      const answer = answers[Math.min(done - 1, answers.length - 1)];
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body ?? null));
      }, answer.delayMs ?? 0);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      rawUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      resolve();
    });
  });
}

const callsFor = (gid: string) => calls.filter((c) => c.body.gid === gid);
const finished = (gid: string) =>
  until(`${gid} to finish`, async () => {
    const view = await client.get(gid);
    return view.status === 'committed' || view.status === 'rolled_back' ? view : undefined;
  }, 30_000, 100);

beforeAll(async () => {
  await startRawParticipant();
  databases = await Promise.all(['raw_coord', 'raw_bank'].map((p) => createTestDatabase(p)));
  coord = await coordinator('raw-coordinator', databases[0].url, {
    CALL_TIMEOUT_MS: '500',
    RECOVERY_INTERVAL_MS: '200',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '300',
    ATTENTION_AFTER_ATTEMPTS: '4',
  });
  await coord.start();
  bank = await accountService('bank-a', databases[1].url, coord.url);
  await bank.start();
  client = new TransactionClient({ coordinatorUrl: coord.url });
  await registerRaw();
});

async function registerRaw(): Promise<void> {
  const registered = await postJson<{ signingSecret: string }>(`${coord.url}/v1/participants`, {
    name: 'raw',
    transport: 'http',
    endpoint: `${rawUrl}/tx`,
    actions: [{ name: 'reserve', modes: ['tcc', 'saga'] }],
  });
  expect(registered.status).toBe(201);
  signingSecret = registered.body.signingSecret;
}

afterAll(async () => {
  // Every call the coordinator made in the tests after this file's own refusals verified.
  expect(refused).toEqual([]);
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await closeServer(server);
  await Promise.all(databases.map((d) => d.drop()));
});

const branches = (gid: string, amount: number): BranchRequest[] => [
  { participant: 'bank-a', action: 'debit', payload: { accountId: `${gid}-acc`, amount } },
  { branchId: 'r1', participant: 'raw', action: 'reserve', payload: { sku: 'book', qty: 2 } },
];

describe('a participant without the SDK (PROTOCOL.md 5.1)', () => {
  it('verifies the signature of every call the coordinator sent it, from PROTOCOL.md 5.5 alone', async () => {
    const gid = 'raw-signed';
    await openAccount(bank, `${gid}-acc`, 1_000);
    const view = await client.begin({ mode: 'tcc', gid, wait: true, branches: branches(gid, 10) });
    expect(view.status).toBe('committed');
    const received = callsFor(gid);
    expect(received.map((c) => c.headers['webhook-id'])).toEqual([`${gid}/r1/try`, `${gid}/r1/confirm`]);
    expect(refused).toEqual([]);
  });

  it('refuses a forged call with 401 and changes nothing', async () => {
    const body = JSON.stringify({ gid: 'raw-forged', branchId: 'r1', mode: 'tcc', action: 'reserve', phase: 'confirm', payload: {} });
    const now = String(Math.floor(Date.now() / 1000));
    const forgedKey = Buffer.alloc(32, 7);
    const forged = `v1,${createHmac('sha256', forgedKey).update(`raw-forged/r1/confirm.${now}.${body}`).digest('base64')}`;
    const attempts: Record<string, string>[] = [{}, { 'webhook-id': 'raw-forged/r1/confirm', 'webhook-timestamp': now, 'webhook-signature': forged }];
    for (const headers of attempts) {
      const answer = await fetch(`${rawUrl}/tx/reserve/confirm`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect(answer.status).toBe(401);
    }
    expect(callsFor('raw-forged')).toEqual([]);
    expect(refused.splice(0)).toHaveLength(2);
  });

  it('a 401 is transient: after a revocation the coordinator retries until the participant has registered again for the new secret', async () => {
    const gid = 'raw-revoked';
    await openAccount(bank, `${gid}-acc`, 1_000);
    const revoked = await postJson(`${coord.url}/admin/participants/raw/rotate-secret`, { overlapSeconds: 0 });
    expect(revoked.status).toBe(200);
    await client.begin({ mode: 'tcc', gid, wait: false, branches: branches(gid, 10) });
    await until('a call refused with the old secret', () => Promise.resolve(refused.length > 0 ? true : undefined));
    await registerRaw();
    const view = await finished(gid);
    expect(view.status).toBe('rolled_back');
    expect(refused.some((r) => r.why === 'no signature matches')).toBe(true);
    // Once registered again, every call verified: cancel reached the branch.
    expect(callsFor(gid).map((c) => c.body.phase)).toContain('cancel');
    refused.splice(0);
  });

  it('receives try then confirm as documented, and its answer becomes the branch result', async () => {
    const gid = 'raw-ok';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { try: [{ status: 200, body: { reservation: 'R-1' } }], confirm: [{ status: 204 }] });
    const view = await client.begin({ mode: 'tcc', gid, wait: true, branches: branches(gid, 100) });
    expect(view.status).toBe('committed');
    expect(view.branches.find((b) => b.branchId === 'r1')?.result).toEqual({ reservation: 'R-1' });

    const received = callsFor(gid);
    expect(received.map((c) => c.path)).toEqual(['/tx/reserve/try', '/tx/reserve/confirm']);
    const first = received[0];
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers['x-tx-gid']).toBe(gid);
    expect(first.headers['x-tx-branch-id']).toBe('r1');
    expect(first.body).toEqual({ gid, branchId: 'r1', mode: 'tcc', action: 'reserve', phase: 'try', payload: { sku: 'book', qty: 2 } });
    expect(received[1].body).toMatchObject({ phase: 'confirm', payload: { sku: 'book', qty: 2 } });
  });

  it('propagates the W3C traceparent of the begin request to every participant call', async () => {
    const gid = 'raw-trace';
    await openAccount(bank, `${gid}-acc`, 1_000);
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const response = await fetch(`${coord.url}/v1/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent },
      body: JSON.stringify({ mode: 'tcc', gid, wait: true, branches: branches(gid, 100) }),
    });
    expect(response.status).toBe(201);
    const received = callsFor(gid);
    expect(received.map((c) => c.body.phase)).toEqual(['try', 'confirm']);
    expect(received.map((c) => c.headers.traceparent)).toEqual([traceparent, traceparent]);
    // A malformed one is ignored, as W3C trace context asks.
    await fetch(`${coord.url}/v1/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: 'not-a-trace' },
      body: JSON.stringify({ mode: 'tcc', gid: 'raw-trace-bad', wait: true, branches: branches('raw-trace-bad', 1) }),
    });
    expect(callsFor('raw-trace-bad').every((c) => c.headers.traceparent === undefined)).toBe(true);
  });

  it('a 409 refuses the branch: the transaction rolls back, every branch gets cancel, and the 409 body is lastError', async () => {
    const gid = 'raw-refuse';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { try: [{ status: 409, body: { reason: 'out of stock' } }] });
    const view = await client.begin({ mode: 'tcc', gid, wait: true, branches: branches(gid, 100) });
    expect(view).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    expect(view.branches.find((b) => b.branchId === 'r1')?.lastError).toEqual({ reason: 'out of stock' });
    expect(callsFor(gid).map((c) => c.body.phase)).toEqual(['try', 'cancel']);
    expect((await accountsOf(bank)).accounts.find((a) => a.id === `${gid}-acc`)).toMatchObject({ balance: 1_000, frozen: 0 });
  });

  it('a 5xx to confirm is transient: confirm is retried until it succeeds', async () => {
    const gid = 'raw-retry';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { confirm: [{ status: 503 }, { status: 500 }, { status: 200 }] });
    await client.begin({ mode: 'tcc', gid, wait: false, branches: branches(gid, 100) });
    const view = await finished(gid);
    expect(view.status).toBe('committed');
    const raw = view.branches.find((b) => b.branchId === 'r1');
    expect(raw).toMatchObject({ status: 'committed', attempts: 4, lastError: null });
    expect(callsFor(gid).map((c) => c.body.phase)).toEqual(['try', 'confirm', 'confirm', 'confirm']);
  });

  it('no answer within the call timeout is an unknown outcome: the one-shot rolls back and cancel reaches the branch', async () => {
    const gid = 'raw-slow';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { try: [{ status: 200, delayMs: 1_500 }] });
    const view = await client.begin({ mode: 'tcc', gid, wait: true, branches: branches(gid, 100) });
    expect(view).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    // CALL_TIMEOUT_MS (500), less any wait for a free slot at the participant's gate (a millisecond on a loaded machine).
    const waited = /no answer within (\d+) ms/.exec(JSON.stringify(view.branches.find((b) => b.branchId === 'r1')?.lastError));
    expect(Number(waited?.[1])).toBeGreaterThan(400);
    expect(Number(waited?.[1])).toBeLessThanOrEqual(500);
    await until('cancel at the slow participant', () => Promise.resolve(callsFor(gid).some((c) => c.body.phase === 'cancel') ? true : undefined));
  });

  it('a 409 to a phase-2 call is a participant bug: retried and flagged for attention', async () => {
    const gid = 'raw-bug';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { confirm: [{ status: 409, body: { oops: true } }, { status: 409 }, { status: 200 }] });
    await postJson<TransactionView>(`${coord.url}/v1/transactions`, { mode: 'tcc', gid, branches: branches(gid, 100) });
    const view = await finished(gid);
    expect(view.status).toBe('committed');
    expect(view.needsAttention).toBe(true);
    expect(callsFor(gid).filter((c) => c.body.phase === 'confirm')).toHaveLength(3);
  });

  it('a transaction whose phase 2 keeps failing past ATTENTION_AFTER_ATTEMPTS is flagged, and still retried to the end', async () => {
    const gid = 'raw-stubborn';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { confirm: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }, { status: 200 }] });
    await postJson<TransactionView>(`${coord.url}/v1/transactions`, { mode: 'tcc', gid, branches: branches(gid, 100) });
    await until('the attention flag', async () => ((await client.get(gid)).needsAttention ? true : undefined));
    expect((await client.get(gid)).status).toBe('committing');
    const view = await finished(gid);
    expect(view).toMatchObject({ status: 'committed', needsAttention: true });
    expect(callsFor(gid).filter((c) => c.body.phase === 'confirm')).toHaveLength(6);
  });

  it('a saga step that keeps failing transiently is retried until the deadline, then the saga rolls back (reason timeout)', async () => {
    const gid = 'raw-saga-timeout';
    await openAccount(bank, `${gid}-acc`, 1_000);
    scripts.set(gid, { execute: [{ status: 503 }] });
    const view = await client.begin({
      mode: 'saga',
      gid,
      timeoutMs: 1_500,
      wait: true,
      steps: [
        { name: 'pay', participant: 'bank-a', action: 'debit', payload: { accountId: `${gid}-acc`, amount: 100 } },
        { name: 'reserve', participant: 'raw', action: 'reserve', payload: { sku: 'book', qty: 1 } },
      ],
    });
    const ended = view.status === 'rolled_back' ? view : await finished(gid);
    expect(ended).toMatchObject({ status: 'rolled_back', reason: 'timeout' });
    const executes = callsFor(gid).filter((c) => c.body.phase === 'execute');
    expect(executes.length).toBeGreaterThanOrEqual(2);
    expect(callsFor(gid).some((c) => c.body.phase === 'compensate')).toBe(true);
    // The step that ran was compensated: the money is back.
    expect((await accountsOf(bank)).accounts.find((a) => a.id === `${gid}-acc`)).toMatchObject({ balance: 1_000 });
  });
});
