/**
 * Overload protection against real processes: a real coordinator (scripts/lib/stack.ts) and
 * small node:http participants this test controls (they count the calls in flight, answer late,
 * answer 503, or cut the connection on demand). Each test starts its own coordinator on its own
 * database, with the settings it is about:
 *   - the per-participant in-flight limit is never exceeded, and is reached;
 *   - the circuit breaker stops the calls to a failing participant, and lets them through again;
 *   - admission control refuses a begin (503 OVERLOADED, Retry-After) before anything is written,
 *     and the SDK's client honours the Retry-After until its work is done;
 *   - a phase 2 owed to a participant whose breaker opened is still delivered once it recovers;
 *   - a phase-1 call queued behind a slow participant is never sent after its transaction's deadline.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { coordinator, sleep, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

/** One call as the participant saw it. */
interface SeenCall {
  gid: string;
  branchId: string;
  phase: string;
  /** Date.now() when its body had arrived. */
  at: number;
  /** The status it was answered with (0: the connection was cut). */
  status?: number;
}

/** How the participant treats one call: answer after `delayMs` with `status`, or cut the connection. */
type Behaviour = (call: SeenCall) => { delayMs?: number; status?: number; refuse?: boolean };

/** A participant over plain HTTP that records every call and how many it had at once. */
class TestParticipant {
  readonly calls: SeenCall[] = [];
  inFlight = 0;
  maxInFlight = 0;
  behave: Behaviour = () => ({});
  private server: Server | null = null;
  endpoint = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void this.answer(Buffer.concat(chunks), req, res));
    });
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', done));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/tx`;
  }

  private async answer(body: Buffer, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = JSON.parse(body.toString('utf8')) as { gid: string; branchId: string; phase: string };
    const call: SeenCall = { gid: parsed.gid, branchId: parsed.branchId, phase: parsed.phase, at: Date.now() };
    this.calls.push(call);
    const { delayMs = 0, status = 200, refuse = false } = this.behave(call);
    if (refuse) {
      call.status = 0;
      req.socket.destroy();
      return;
    }
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (delayMs > 0) await sleep(delayMs);
      call.status = status;
      if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{}' : '{"injected":true}');
    } finally {
      this.inFlight--;
    }
  }

  callsOf(gid: string, phase?: string): SeenCall[] {
    return this.calls.filter((c) => c.gid === gid && (phase === undefined || c.phase === phase));
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server!.close(() => done()));
  }
}

/** What each test started: stopped after it. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Short retry and recovery times, so transactions that failed transiently are tried again within a fraction of a second. */
const FAST = { RECOVERY_INTERVAL_MS: '200', RETRY_BASE_MS: '50', RETRY_MAX_MS: '300', LOG_LEVEL: 'warn' };

interface Stack {
  coord: CoordinatorHandle;
  database: TestDatabase;
  participant: TestParticipant;
}

/** A coordinator with `env` on a fresh database, and a test participant registered as `name` (actions `op` in tcc/saga, `check` in msg). */
async function stack(name: string, env: Record<string, string>): Promise<Stack> {
  const participant = new TestParticipant();
  await participant.start();
  cleanups.push(() => participant.stop());
  const database = await createTestDatabase(`overload_${name.replace(/-/g, '_')}`);
  cleanups.push(() => database.drop());
  const coord = await coordinator(`overload-${name}`, database.url, { ...FAST, ...env });
  cleanups.push(() => coord.process.kill('SIGKILL'));
  await coord.start();
  const registered = await api(coord, 'POST', '/v1/participants', {
    name,
    transport: 'http',
    endpoint: participant.endpoint,
    actions: [{ name: 'op', modes: ['tcc', 'saga'] }],
  });
  expect(registered.status).toBe(201);
  return { coord, database, participant };
}

async function api(coord: CoordinatorHandle, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const response = await fetch(`${coord.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

const view = async (coord: CoordinatorHandle, gid: string): Promise<TransactionView> => (await api(coord, 'GET', `/v1/transactions/${gid}`)).json as unknown as TransactionView;

/** A saga of one step on `participant`, begun without waiting. */
const saga = (gid: string, participant: string, timeoutMs = 30_000) => ({ mode: 'saga', gid, timeoutMs, steps: [{ name: 's1', participant, action: 'op', payload: {} }] });

/** A metric's value on /metrics: the sum of its series carrying `labels` (0 when none). */
async function metric(coord: CoordinatorHandle, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${coord.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  // The sum over every series with these labels (calls not made by any reason, say).
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** Resolves once every gid has ended; returns their views. */
function allEnded(coord: CoordinatorHandle, gids: readonly string[], timeoutMs = 20_000): Promise<TransactionView[]> {
  return until(
    `${gids.length} transactions to end`,
    async () => {
      const views = await Promise.all(gids.map((gid) => view(coord, gid)));
      return views.every((v) => v.status === 'committed' || v.status === 'rolled_back') ? views : undefined;
    },
    timeoutMs,
    100,
  );
}

describe('overload protection (real coordinator, test participants)', () => {
  it('never has more than PARTICIPANT_MAX_IN_FLIGHT calls in flight to a participant, and uses all of them', async () => {
    // Admission control refuses a begin once a new call would wait more than half its
    // CALL_TIMEOUT_MS: 36 waiting, 4 at a time, is 1.8 s at 200 ms a call, past the default's
    // 2.5 s once the calls take 280 ms on a loaded machine and a begin comes in after the first
    // answers (in CI: 503 OVERLOADED). This test is about the gate, not admission: a timeout
    // (and the lease, at least twice it) long enough that all 40 are let in.
    const { coord, participant } = await stack('limited', { PARTICIPANT_MAX_IN_FLIGHT: '4', PARTICIPANT_ADAPTIVE_LIMIT: 'false', CALL_TIMEOUT_MS: '10000', LEASE_MS: '20000' });
    participant.behave = () => ({ delayMs: 200 });
    const gids = Array.from({ length: 40 }, (_, i) => `limit-${i}`);
    const startedAt = Date.now();
    const begun = await Promise.all(gids.map((gid) => api(coord, 'POST', '/v1/transactions', saga(gid, 'limited'))));
    // With the error code, so a refusal says which one it was.
    expect(begun.map((b) => `${b.status} ${typeof b.json.error === 'string' ? b.json.error : ''}`.trim())).toEqual(gids.map(() => '201'));
    // The gate's fixed limit, on /metrics while the calls drain four at a time.
    await until('the gate on /metrics', async () => ((await metric(coord, 'dtx_participant_limit', { participant: 'limited' })) === 4 ? true : undefined), 5_000, 20);
    const views = await allEnded(coord, gids);
    expect(views.map((v) => v.status)).toEqual(gids.map(() => 'committed'));
    const notMade = await metric(coord, 'dtx_participant_calls_not_made_total', { participant: 'limited' });
    console.log(`  40 sagas ended in ${Date.now() - startedAt} ms; at most ${participant.maxInFlight} calls at once; ${notMade} calls not made; calls: ${participant.calls.length}, first ${participant.calls[0].at - startedAt} ms, last ${participant.calls.at(-1)!.at - startedAt} ms`);
    expect(participant.maxInFlight).toBe(4);
    // Waiting took from the calls' CALL_TIMEOUT_MS, but none waited past it: every call was made.
    expect(notMade).toBe(0);
    // Each step executed once, none lost or sent twice.
    expect(participant.calls.filter((c) => c.phase === 'execute').map((c) => c.gid).sort()).toEqual([...gids].sort());
  }, 30_000);

  it('opens the breaker after BREAKER_FAILURE_THRESHOLD transient failures: calls stop reaching the participant but for probes, and it closes once the participant answers', async () => {
    const { coord, participant } = await stack('flaky', { BREAKER_FAILURE_THRESHOLD: '3', BREAKER_OPEN_MS: '500', BREAKER_OPEN_MAX_MS: '500', RETRY_MAX_MS: '200' });
    let down = true;
    // The first answers come late, so all ten are begun before the breaker opens (begins naming a
    // participant whose breaker is open are refused: below).
    let delayMs = 1_000;
    participant.behave = () => ({ status: down ? 503 : 200, delayMs });
    const gids = Array.from({ length: 10 }, (_, i) => `breaker-${i}`);
    const begun = await Promise.all(gids.map((gid) => api(coord, 'POST', '/v1/transactions', saga(gid, 'flaky', 60_000))));
    expect(begun.map((b) => b.status)).toEqual(gids.map(() => 201));
    delayMs = 0;

    await until('the breaker to open', async () => ((await metric(coord, 'dtx_participant_breaker_open', { participant: 'flaky' })) === 1 ? true : undefined), 10_000, 50);

    const notMade = () => metric(coord, 'dtx_participant_calls_not_made_total', { participant: 'flaky', reason: 'breaker_open' });
    const [calls0, notMade0] = [participant.calls.length, await notMade()];
    await sleep(3_000);
    const [calls, refused] = [participant.calls.length - calls0, (await notMade()) - notMade0];
    console.log(`  breaker open 3 s: ${calls} calls reached the participant, ${refused} were not made`);
    // One probe per BREAKER_OPEN_MS (500 ms): about 6 in 3 s. Without the breaker, 10 sagas
    // retrying every 50-200 ms would have sent well over a hundred; those are the calls not made.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(10);
    expect(refused).toBeGreaterThan(30);
    expect(refused).toBeGreaterThan(5 * calls);
    // Every call that reached it was answered 503: nothing got through the breaker while it failed.
    expect(participant.calls.every((c) => c.status === 503)).toBe(true);
    // The sagas are waiting, not given up.
    expect((await Promise.all(gids.map((gid) => view(coord, gid)))).map((v) => v.status)).toEqual(gids.map(() => 'active'));

    // While it is open, a new begin naming it is refused before anything is written (503
    // OVERLOADED, Retry-After); in the moments its probe may go (half-open), one is let in.
    const answers: { gid: string; status: number; error: unknown; retryAfter: string | null }[] = [];
    for (let i = 0; i < 10; i++) {
      const gid = `breaker-late-${i}`;
      const answer = await api(coord, 'POST', '/v1/transactions', saga(gid, 'flaky', 60_000));
      answers.push({ gid, status: answer.status, error: answer.json.error, retryAfter: answer.headers.get('retry-after') });
      await sleep(50);
    }
    const refusals = answers.filter((a) => a.status !== 201);
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals) expect([r.status, r.error, r.retryAfter]).toEqual([503, 'OVERLOADED', expect.stringMatching(/^[1-9]\d*$/)]);
    for (const r of refusals) expect((await api(coord, 'GET', `/v1/transactions/${r.gid}`)).status).toBe(404);
    gids.push(...answers.filter((a) => a.status === 201).map((a) => a.gid));

    down = false;
    const views = await allEnded(coord, gids);
    expect(views.map((v) => v.status)).toEqual(gids.map(() => 'committed'));
    expect(await metric(coord, 'dtx_participant_breaker_open', { participant: 'flaky' })).toBe(0);
    for (const gid of gids) expect(participant.callsOf(gid, 'execute').filter((c) => c.status === 200)).toHaveLength(1);
  }, 30_000);

  it('refuses a begin before writing anything (503 OVERLOADED, Retry-After) while the participant has ADMISSION_QUEUE_LIMIT calls waiting; the SDK client waits and gets it all done', async () => {
    const { coord, database, participant } = await stack('slow', {
      ADMISSION_QUEUE_LIMIT: '5',
      PARTICIPANT_MAX_IN_FLIGHT: '1',
      PARTICIPANT_ADAPTIVE_LIMIT: 'false',
    });
    participant.behave = () => ({ delayMs: 300 });
    const admitted: string[] = [];
    let refused: { gid: string; answer: Awaited<ReturnType<typeof api>> } | null = null;
    for (let i = 0; i < 40 && !refused; i++) {
      const gid = `admission-${i}`;
      const answer = await api(coord, 'POST', '/v1/transactions', saga(gid, 'slow'));
      if (answer.status === 201) admitted.push(gid);
      else refused = { gid, answer };
    }
    expect(refused, 'no begin was refused').not.toBeNull();
    const { gid, answer } = refused!;
    expect(answer.status).toBe(503);
    expect(answer.json.error).toBe('OVERLOADED');
    const retryAfter = answer.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(answer.json.retryAfterSeconds).toBe(Number(retryAfter));
    // 1 in flight and 5 waiting when it came: at least 5 admitted before it.
    expect(admitted.length).toBeGreaterThanOrEqual(5);
    expect(await metric(coord, 'dtx_admission_total', { outcome: 'refused' })).toBeGreaterThan(0);

    // Nothing of the refused begin was written.
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    try {
      expect((await db.query('SELECT gid FROM global_transactions WHERE gid = $1', [gid])).rowCount).toBe(0);
      expect((await db.query('SELECT gid FROM transaction_events WHERE gid = $1', [gid])).rowCount).toBe(0);
    } finally {
      await db.end();
    }
    expect((await api(coord, 'GET', `/v1/transactions/${gid}`)).status).toBe(404);
    expect(participant.callsOf(gid)).toHaveLength(0);

    // The same work through the SDK: refused begins are sent again after their Retry-After.
    const refusedBefore = await metric(coord, 'dtx_admission_total', { outcome: 'refused' });
    const client = new TransactionClient({ coordinatorUrl: coord.url, maxBackPressureWaitMs: 20_000 });
    const sdkGids = [gid, ...Array.from({ length: 9 }, (_, i) => `admission-sdk-${i}`)];
    for (const g of sdkGids) {
      const begun = await client.begin({ mode: 'saga', gid: g, timeoutMs: 30_000, steps: [{ name: 's1', participant: 'slow', action: 'op', payload: {} }] });
      expect(begun.gid).toBe(g);
    }
    const refusedDuring = (await metric(coord, 'dtx_admission_total', { outcome: 'refused' })) - refusedBefore;
    console.log(`  ${admitted.length} admitted before the first refusal; the SDK client was refused ${refusedDuring} time(s) and waited`);
    expect(refusedDuring).toBeGreaterThan(0);
    const views = await allEnded(coord, [...admitted, ...sdkGids], 25_000);
    expect(views.map((v) => v.status)).toEqual(views.map(() => 'committed'));
    expect(participant.maxInFlight).toBe(1);
  }, 45_000);

  it('still delivers phase 2 after the breaker opened mid-commit: the transaction stays committing, then commits once the participant is back', async () => {
    const { coord, participant } = await stack('payee', { BREAKER_FAILURE_THRESHOLD: '3', BREAKER_OPEN_MS: '300', BREAKER_OPEN_MAX_MS: '600' });
    let confirmDown = true;
    participant.behave = (call) => ({ status: call.phase === 'confirm' && confirmDown ? 503 : 200 });
    const gid = 'phase2-breaker';
    const begun = await api(coord, 'POST', '/v1/transactions', { mode: 'tcc', gid, timeoutMs: 10_000, branches: [{ participant: 'payee', action: 'op', payload: {} }] });
    expect(begun.status).toBe(201);

    await until('the breaker to open on failed confirms', async () => ((await metric(coord, 'dtx_participant_breaker_open', { participant: 'payee' })) === 1 ? true : undefined), 10_000, 50);
    expect(participant.callsOf(gid, 'try').map((c) => c.status)).toEqual([200]);
    expect(participant.callsOf(gid, 'confirm').length).toBeGreaterThanOrEqual(3);
    // Past its 10 s deadline too (a decided transaction has none left): still committing, never failed nor rolled back.
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      const v = await view(coord, gid);
      expect(v.status).toBe('committing');
      expect(v.reason).toBeNull();
    }
    expect(await metric(coord, 'dtx_participant_calls_not_made_total', { participant: 'payee', reason: 'breaker_open' })).toBeGreaterThan(0);
    expect(participant.callsOf(gid, 'cancel')).toHaveLength(0);

    confirmDown = false;
    const [done] = await allEnded(coord, [gid]);
    expect(done.status).toBe('committed');
    expect(done.branches.map((b) => b.status)).toEqual(['committed']);
    expect(participant.callsOf(gid, 'confirm').filter((c) => c.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(participant.callsOf(gid, 'cancel')).toHaveLength(0);
    expect(await metric(coord, 'dtx_participant_breaker_open', { participant: 'payee' })).toBe(0);
  }, 30_000);

  it('never sends a queued phase-1 call after its transaction deadline: the saga rolls back without its step ever reaching the participant', async () => {
    const { coord, participant } = await stack('narrow', { PARTICIPANT_MAX_IN_FLIGHT: '1', PARTICIPANT_ADAPTIVE_LIMIT: 'false', CALL_TIMEOUT_MS: '5000' });
    // The blocker's step holds the only slot for 3 s; everything else answers at once.
    participant.behave = (call) => ({ delayMs: call.gid === 'deadline-blocker' && call.phase === 'execute' ? 3_000 : 0 });
    expect((await api(coord, 'POST', '/v1/transactions', saga('deadline-blocker', 'narrow'))).status).toBe(201);
    await until('the blocker to hold the slot', () => Promise.resolve(participant.inFlight === 1 ? true : undefined), 5_000, 10);

    const gid = 'deadline-victim';
    expect((await api(coord, 'POST', '/v1/transactions', saga(gid, 'narrow', 1_500))).status).toBe(201);
    const deadline = Date.parse((await view(coord, gid)).deadline);
    const [victim, blocker] = await allEnded(coord, [gid, 'deadline-blocker']);
    // Past the blocker's end, when the slot was free again: time for a late call to show.
    await sleep(500);

    expect(victim.status).toBe('rolled_back');
    expect(victim.reason).toBe('timeout');
    expect(blocker.status).toBe('committed');
    const late = participant.callsOf(gid, 'execute').filter((c) => c.at > deadline);
    expect(late, 'phase-1 calls sent after the deadline').toEqual([]);
    // It waited in the queue the whole time: never sent at all.
    expect(participant.callsOf(gid, 'execute')).toEqual([]);
    expect(await metric(coord, 'dtx_participant_calls_not_made_total', { participant: 'narrow', reason: 'queue_timeout' })).toBeGreaterThan(0);
    expect(participant.maxInFlight).toBe(1);
  }, 30_000);
});
