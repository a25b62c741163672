/**
 * Long-running answers (PROTOCOL.md 3.6), end to end: the coordinator as its own process, on its
 * own Postgres, with API keys, calling a participant written by hand (test/fixtures/
 * long-running-participant.ts) over HTTP and over the NestJS TCP transport, which answers
 * `202` / `{ outcome: 'ongoing' }` as often as each test says before its final answer. Every
 * rule of 3.6 on both transports: a one-shot waits for its branches (and still rolls back on a
 * refusal), an interactive add answers 202, a saga step and msg's check-back wait and go on,
 * phase 2 waits without ever being flagged, retryAfterMs is honoured, the deadline still holds,
 * the outcome endpoint (once, its owner only), and a coordinator killed while a branch waits.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { authHeaders, coordinator, freePort, postJson, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import {
  FOREVER_ONGOING,
  httpLongRunningParticipant,
  OK,
  ongoingThen,
  REFUSED,
  tcpLongRunningParticipant,
  type LongRunningParticipant,
} from '../fixtures/long-running-participant.js';

const key = () => randomBytes(24).toString('base64url');
/** A client key, the key that registers (and so owns) both participants, another participant key, and an admin key. */
const KEYS = { admin: key(), client: key(), owner: key(), stranger: key() };
const API_KEYS = `admin:${KEYS.admin},client:${KEYS.client},participant:${KEYS.owner},participant:${KEYS.stranger}`;

let database: TestDatabase | undefined;
let coord: CoordinatorHandle;
const participants: LongRunningParticipant[] = [];
let run = 0;
/** A gid of its own for each transaction. */
const gidOf = (what: string) => `lr-${what}-${process.pid}-${++run}`;

async function get(gid: string): Promise<TransactionView> {
  const response = await fetch(`${coord.url}/v1/transactions/${gid}`, { headers: authHeaders(KEYS.client), signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`GET ${gid}: ${response.status} ${await response.text()}`);
  return (await response.json()) as TransactionView;
}

const post = <T = TransactionView>(path: string, body: unknown, apiKey = KEYS.client) => postJson<T>(`${coord.url}${path}`, body, apiKey);

/** The transaction once it matches `done`. */
const reaches = (gid: string, what: string, done: (view: TransactionView) => boolean) =>
  until(`${gid} ${what}`, async () => {
    const view = await get(gid);
    return done(view) ? view : undefined;
  });
const finished = (gid: string) => reaches(gid, 'to finish', (v) => v.status === 'committed' || v.status === 'rolled_back');
const branchOf = (view: TransactionView, branchId: string) => view.branches.find((b) => b.branchId === branchId)!;

beforeAll(async () => {
  database = await createTestDatabase('long_running');
  coord = await coordinator('long-running-coordinator', database.url, {
    API_KEYS,
    RECOVERY_INTERVAL_MS: '100',
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '400',
    LEASE_MS: '2000',
    CALL_TIMEOUT_MS: '1000',
    // Low, so that a wait counted as failures would be flagged within every test here.
    ATTENTION_AFTER_ATTEMPTS: '2',
  });
  await coord.start();
  participants.push(await httpLongRunningParticipant(), await tcpLongRunningParticipant(await freePort()));
  for (const p of participants) {
    const registered = await post(
      '/v1/participants',
      { name: `lr-${p.transport}`, ...p.registration, actions: [{ name: 'hold', modes: ['tcc', '2pc', 'saga', 'msg'] }] },
      KEYS.owner,
    );
    expect(registered.status).toBe(201);
  }
});

afterAll(async () => {
  await coord?.process.kill();
  for (const p of participants) await p.close();
  await database?.drop();
});

describe.each(['http', 'tcp'] as const)('long-running answers over %s', (transport) => {
  const participant = () => participants.find((p) => p.transport === transport)!;
  const name = `lr-${transport}`;
  const branch = (branchId: string) => ({ branchId, participant: name, action: 'hold' });
  const oneShot = (gid: string, timeoutMs = 30_000) => post('/v1/transactions', { mode: 'tcc', gid, timeoutMs, branches: [branch('b1'), branch('b2')] });
  const kinds = (gid: string, branchId: string, phase: string) => participant().callsOf(gid, branchId, phase).map((c) => c.answer.kind);

  it('one-shot tcc: a branch answering ongoing holds the decision until its final answer, then it commits; never flagged', async () => {
    const gid = gidOf('os-commit');
    participant().script(gid, 'b2', 'try', ongoingThen(2, OK));
    const begun = await oneShot(gid);
    expect(begun.status).toBe(201);
    expect(begun.body.status).toBe('active');
    expect(branchOf(begun.body, 'b1')).toMatchObject({ status: 'prepared', waitingSince: null });
    expect(branchOf(begun.body, 'b2')).toMatchObject({ status: 'pending', waitingSince: expect.any(String) as unknown });

    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'committed', needsAttention: false });
    expect(done.branches.map((b) => [b.branchId, b.status, b.waitingSince])).toEqual([['b1', 'committed', null], ['b2', 'committed', null]]);
    // The same call again until the final answer; the branch that answered at once asked once.
    expect(kinds(gid, 'b2', 'try')).toEqual(['ongoing', 'ongoing', 'ok']);
    expect(kinds(gid, 'b1', 'try')).toEqual(['ok']);
    expect(participant().callsOf(gid, undefined, 'cancel')).toEqual([]);
  });

  it('one-shot tcc: a refusal after ongoing answers rolls back, cancel to every branch', async () => {
    const gid = gidOf('os-refused');
    participant().script(gid, 'b2', 'try', ongoingThen(2, REFUSED));
    await oneShot(gid);
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'branch_failed', needsAttention: false });
    expect(kinds(gid, 'b2', 'try')).toEqual(['ongoing', 'ongoing', 'refused']);
    expect(participant().callsOf(gid, 'b1', 'cancel').length).toBeGreaterThanOrEqual(1);
    expect(participant().callsOf(gid, 'b2', 'cancel').length).toBeGreaterThanOrEqual(1);
    expect(participant().callsOf(gid, undefined, 'confirm')).toEqual([]);
  });

  it('interactive (3.2): phase 1 answered ongoing is a 202 pending; the coordinator asks again until prepared; then the commit works', async () => {
    const gid = gidOf('interactive');
    expect((await post('/v1/transactions', { mode: 'tcc', gid, timeoutMs: 30_000 })).status).toBe(201);
    participant().script(gid, 'x', 'try', FOREVER_ONGOING(200));
    const added = await post(`/v1/transactions/${gid}/branches`, branch('x'));
    expect(added).toEqual({ status: 202, body: { branchId: 'x', status: 'pending' } });
    // The same branchId again: the recorded outcome, still pending.
    expect(await post(`/v1/transactions/${gid}/branches`, branch('x'))).toEqual({ status: 202, body: { branchId: 'x', status: 'pending' } });
    // The coordinator asks it again by itself (the client only reads).
    await until('the branch to be asked again', () => Promise.resolve(participant().callsOf(gid, 'x', 'try').length >= 3 ? true : undefined));
    expect(branchOf(await get(gid), 'x')).toMatchObject({ status: 'pending', waitingSince: expect.any(String) as unknown });
    participant().script(gid, 'x', 'try', [{ kind: 'ok', result: { held: 5 } }]);
    const prepared = await reaches(gid, 'x prepared', (v) => branchOf(v, 'x').status === 'prepared');
    expect(branchOf(prepared, 'x')).toMatchObject({ result: { held: 5 }, waitingSince: null });
    expect(prepared.status).toBe('active');

    const committed = await post(`/v1/transactions/${gid}/commit`, {});
    expect(committed.status).toBe(200);
    expect(committed.body.status).toMatch(/^committ/);
    expect(await finished(gid)).toMatchObject({ status: 'committed', needsAttention: false });
  });

  it('saga: a step answering ongoing waits, then the saga goes on to the next step and commits', async () => {
    const gid = gidOf('saga');
    participant().script(gid, 's1', 'execute', ongoingThen(2, OK));
    const begun = await post('/v1/transactions', {
      mode: 'saga',
      gid,
      timeoutMs: 30_000,
      steps: [{ name: 's1', participant: name, action: 'hold' }, { name: 's2', participant: name, action: 'hold' }],
    });
    expect(begun.status).toBe(201);
    expect(await finished(gid)).toMatchObject({ status: 'committed', needsAttention: false });
    const s1 = participant().callsOf(gid, 's1', 'execute');
    expect(s1.map((c) => c.answer.kind)).toEqual(['ongoing', 'ongoing', 'ok']);
    // s2 only once s1 gave its final answer.
    const [s2] = participant().callsOf(gid, 's2', 'execute');
    expect(s2.receivedAt).toBeGreaterThanOrEqual(s1[2].answeredAt);
    expect(participant().callsOf(gid, undefined, 'compensate')).toEqual([]);
  });

  it('msg: a check-back answered ongoing is asked again later; its final 2xx delivers the message', async () => {
    const gid = gidOf('msg');
    participant().script(gid, 'check', 'check', ongoingThen(2, OK));
    const begun = await post('/v1/transactions', { mode: 'msg', gid, timeoutMs: 500, branches: [branch('b1')], check: { participant: name, action: 'hold' } });
    expect(begun.status).toBe(201);
    expect(await finished(gid)).toMatchObject({ status: 'committed', needsAttention: false });
    expect(kinds(gid, 'check', 'check')).toEqual(['ongoing', 'ongoing', 'ok']);
    expect(kinds(gid, 'b1', 'execute')).toEqual(['ok']);
  });

  it('phase 2 answered ongoing again and again: delivered once final, never flagged for attention', async () => {
    const gid = gidOf('phase2');
    participant().script(gid, 'b1', 'confirm', ongoingThen(4, OK));
    await oneShot(gid);
    const done = await finished(gid);
    // Four ongoing answers, more than ATTENTION_AFTER_ATTEMPTS (2): no attention.
    expect(done).toMatchObject({ status: 'committed', needsAttention: false });
    expect(kinds(gid, 'b1', 'confirm')).toEqual(['ongoing', 'ongoing', 'ongoing', 'ongoing', 'ok']);
  });

  it('retryAfterMs is honoured: the same call does not come again before it', async () => {
    const gid = gidOf('retry-after');
    const retryAfterMs = 1_500;
    participant().script(gid, 'b2', 'try', ongoingThen(1, OK, retryAfterMs));
    await oneShot(gid);
    expect(await finished(gid)).toMatchObject({ status: 'committed' });
    const [first, second] = participant().callsOf(gid, 'b2', 'try');
    expect([first.answer.kind, second.answer.kind]).toEqual(['ongoing', 'ok']);
    // Both times on this process's clock in whole milliseconds: 1 ms of rounding either way.
    expect(second.receivedAt - first.answeredAt).toBeGreaterThanOrEqual(retryAfterMs - 1);
  });

  it('deadline: a phase 1 still waiting at the deadline rolls back (timeout), and the waiting branch gets its cancel', async () => {
    const gid = gidOf('deadline');
    participant().script(gid, 'b2', 'try', FOREVER_ONGOING());
    const begun = await oneShot(gid, 1_500);
    expect(begun.body.status).toBe('active');
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'timeout', needsAttention: false });
    expect(participant().callsOf(gid, 'b2', 'cancel').length).toBeGreaterThanOrEqual(1);
    expect(participant().callsOf(gid, 'b1', 'cancel').length).toBeGreaterThanOrEqual(1);
    expect(participant().callsOf(gid, undefined, 'confirm')).toEqual([]);
    expect(done.branches.every((b) => b.waitingSince === null)).toBe(true);
  });

  describe('the outcome endpoint: POST /v1/transactions/{gid}/branches/{branchId}/outcome', () => {
    const outcome = (gid: string, branchId: string, body: unknown, apiKey = KEYS.owner) =>
      post<TransactionView & { error?: string; transaction?: TransactionView }>(`/v1/transactions/${gid}/branches/${branchId}/outcome`, body, apiKey);
    /** A one-shot whose b2 answered ongoing with a hint longer than the test: asked again only if the report failed. */
    async function waitingOneShot(what: string): Promise<string> {
      const gid = gidOf(what);
      participant().script(gid, 'b2', 'try', FOREVER_ONGOING(60_000));
      const begun = await oneShot(gid);
      expect(branchOf(begun.body, 'b2').waitingSince).not.toBeNull();
      return gid;
    }

    it('ok moves the branch at once (no repeat of the call needed); a repeat is 200 with the view', async () => {
      const gid = await waitingOneShot('report-ok');
      // Its confirm waits until the test lets it go, so the transaction stays committing for the repeat.
      participant().script(gid, 'b2', 'confirm', FOREVER_ONGOING(100));
      const reported = await outcome(gid, 'b2', { phase: 'try', outcome: 'ok', result: { approvedBy: 'ann' } });
      expect(reported.status).toBe(200);
      expect(reported.body.status).toBe('committing');
      expect(branchOf(reported.body, 'b2')).toMatchObject({ status: 'prepared', result: { approvedBy: 'ann' }, waitingSince: null });

      const again = await outcome(gid, 'b2', { phase: 'try', outcome: 'ok', result: { approvedBy: 'ann' } });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ gid, status: 'committing' });
      expect(branchOf(again.body, 'b2').result).toEqual({ approvedBy: 'ann' });

      participant().script(gid, 'b2', 'confirm', [OK]);
      expect(await finished(gid)).toMatchObject({ status: 'committed', needsAttention: false });
      expect(kinds(gid, 'b2', 'try')).toEqual(['ongoing']);
    });

    it('failed refuses: the effect of a 409, rolled back with cancel to every branch', async () => {
      const gid = await waitingOneShot('report-failed');
      const reported = await outcome(gid, 'b2', { phase: 'try', outcome: 'failed', result: { reason: 'not approved' } });
      expect(reported.status).toBe(200);
      expect(reported.body).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
      expect(branchOf(reported.body, 'b2')).toMatchObject({ status: 'failed', lastError: { reason: 'not approved' } });
      expect(await finished(gid)).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
      expect(participant().callsOf(gid, 'b1', 'cancel').length).toBeGreaterThanOrEqual(1);
      expect(participant().callsOf(gid, 'b2', 'cancel').length).toBeGreaterThanOrEqual(1);
      expect(kinds(gid, 'b2', 'try')).toEqual(['ongoing']);
    });

    it('a phase not in progress is 409 PHASE_NOT_IN_PROGRESS; another key is 403; unknown ids 404; none has any effect', async () => {
      const gid = await waitingOneShot('report-refused');
      const before = await get(gid);

      const wrongPhase = await outcome(gid, 'b2', { phase: 'confirm', outcome: 'ok' });
      expect(wrongPhase.status).toBe(409);
      expect(wrongPhase.body).toMatchObject({ error: 'PHASE_NOT_IN_PROGRESS', transaction: { gid, status: 'active' } });
      // b1's try had its final answer (ok) already: a failure of it is not in progress either.
      expect((await outcome(gid, 'b1', { phase: 'try', outcome: 'failed' })).body).toMatchObject({ error: 'PHASE_NOT_IN_PROGRESS' });

      // Another participant key does not own the name; a client key has not even the role.
      expect((await outcome(gid, 'b2', { phase: 'try', outcome: 'ok' }, KEYS.stranger)).body).toMatchObject({ statusCode: 403, error: 'FORBIDDEN' });
      expect((await outcome(gid, 'b2', { phase: 'try', outcome: 'ok' }, KEYS.client)).body).toMatchObject({ statusCode: 403, error: 'FORBIDDEN' });

      expect((await outcome(gid, 'nobody', { phase: 'try', outcome: 'ok' })).body).toMatchObject({ statusCode: 404, error: 'NOT_FOUND' });
      expect((await outcome(gidOf('unknown'), 'b2', { phase: 'try', outcome: 'ok' })).body).toMatchObject({ statusCode: 404, error: 'TX_NOT_FOUND' });
      expect((await outcome(gid, 'b2', { phase: 'try', outcome: 'maybe' })).body).toMatchObject({ statusCode: 400, error: 'VALIDATION_FAILED', field: 'outcome' });

      const after = await get(gid);
      expect(after.status).toBe('active');
      expect(after.branches).toEqual(before.branches);
      expect(kinds(gid, 'b2', 'try')).toEqual(['ongoing']);
      // The owner's report still works after all that.
      expect((await outcome(gid, 'b2', { phase: 'try', outcome: 'ok' })).status).toBe(200);
      expect(await finished(gid)).toMatchObject({ status: 'committed' });
    });
  });

  it('survives a coordinator restart: killed (kill -9) while a branch waits, the new process keeps asking, then commits', async () => {
    const gid = gidOf('restart');
    participant().script(gid, 'b2', 'try', FOREVER_ONGOING(200));
    await oneShot(gid);
    await until('b2 asked again', () => Promise.resolve(participant().callsOf(gid, 'b2', 'try').length >= 2 ? true : undefined));
    await coord.process.kill('SIGKILL');
    const killedAt = Date.now();
    await coord.start();
    // The new process asks the same call again by itself.
    await until('b2 asked by the new process', () => Promise.resolve(participant().callsOf(gid, 'b2', 'try').some((c) => c.receivedAt > killedAt) ? true : undefined));
    expect(branchOf(await get(gid), 'b2')).toMatchObject({ status: 'pending', waitingSince: expect.any(String) as unknown });
    participant().script(gid, 'b2', 'try', [OK]);
    expect(await finished(gid)).toMatchObject({ status: 'committed', needsAttention: false });
  });
});
