/**
 * Mode workflow end to end (PROTOCOL.md 3.7), every process real: a coordinator (its resume
 * interval, WORKFLOW_RESUME_MS, set short), two SDK step participants (one over HTTP, one over
 * NestJS TCP) that count every call reaching them, a participant written by hand (node:http,
 * signatures checked from the page) that hosts workflows driven by this test and takes local
 * steps' compensations, and an SDK workflow host (@Workflow, WorkflowClient) as a process of
 * its own, killed -9 between two steps and started again.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, PhaseCallBody, StepKind, TransactionDetailView, TransactionView } from '@nest-dtx/protocol';
import { coordinator, freePort, getJson, ManagedProcess, postJson, ROOT, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';
import { closeServer } from '../support/servers.js';
import { startStepParticipant, type CallLog, type SeenCall } from '../fixtures/workflow/step-participant.js';
import type { RunAnswer } from '../fixtures/workflow/workflow-host.js';
import { signatureProblem } from '../support/page-signature.js';

const RESUME_MS = 1_500;
const run = randomBytes(3).toString('hex');
const STEPS_HTTP = `wf-steps-http-${run}`;
const STEPS_TCP = `wf-steps-tcp-${run}`;
const RAW = `wf-raw-${run}`;
const HOST = `wf-host-${run}`;
const STEPS = { http: STEPS_HTTP, tcp: STEPS_TCP } as const;

/** Every call the step participants got, and every business method they ran, with the raw participant's calls among the latter, in order. */
const log: CallLog = { received: [], ran: [] };

let coordinatorDb: TestDatabase;
const participantDbs: { db: TestDatabase; dataSource: DataSource }[] = [];
let coord: CoordinatorHandle;
const stepApps: INestApplication[] = [];
let host: ManagedProcess;
let hostUrl = '';

// ---------------------------------------------------------------------------------------------
// The participant written by hand: hosts workflows this test drives (action `flow`, mode
// workflow) and takes local steps' compensations (action `undo`, mode saga).

interface RawCall {
  path: string;
  headers: IncomingHttpHeaders;
  body: PhaseCallBody;
}
/** How the raw host answers the n-th resume (1-based) of a gid; by default `202`, still running. */
type ResumeScript = (call: PhaseCallBody, nth: number) => Promise<{ status: number; body: Json }>;

const rawCalls: RawCall[] = [];
const refusedCalls: string[] = [];
const resumeScripts = new Map<string, ResumeScript>();
let rawServer: Server;
let rawUrl = '';
let rawSecret = '';


function startRawParticipant(): Promise<void> {
  rawServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const problem = signatureProblem(rawSecret, req.headers, raw);
      const answer = (status: number, body: Json) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (problem) {
        refusedCalls.push(`${req.url}: ${problem}`);
        answer(401, { error: 'SIGNATURE_INVALID', message: problem });
        return;
      }
      const body = JSON.parse(raw.toString('utf8')) as PhaseCallBody;
      rawCalls.push({ path: req.url ?? '', headers: req.headers, body });
      if (body.action === 'hold' && body.phase === 'try') {
        // A step whose participant works long (PROTOCOL.md 3.6): accepted (202) at first, prepared when asked again.
        const tries = rawCalls.filter((c) => c.body.gid === body.gid && c.body.branchId === body.branchId && c.body.phase === 'try').length;
        if (tries === 1) answer(202, { retryAfterMs: 200 });
        else answer(200, { held: true });
        return;
      }
      if (body.phase !== 'resume') {
        log.ran.push({ participant: RAW, gid: body.gid, branchId: body.branchId, mode: body.mode, action: body.action, phase: body.phase });
        answer(200, { undone: body.payload });
        return;
      }
      const nth = rawCalls.filter((c) => c.body.gid === body.gid && c.body.phase === 'resume').length;
      const script = resumeScripts.get(body.gid) ?? (() => Promise.resolve({ status: 202, body: { retryAfterMs: 300 } }));
      script(body, nth).then(
        ({ status, body: answered }) => answer(status, answered),
        (error: unknown) => answer(500, { error: String(error) }),
      );
    });
  });
  return new Promise((listening) =>
    rawServer.listen(0, '127.0.0.1', () => {
      const address = rawServer.address();
      rawUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      listening();
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The client API, as any HTTP client (the raw host) speaks it.

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
}
const post = <T = Record<string, unknown>>(path: string, body: unknown): Promise<Answer<T>> => postJson<T>(`${coord.url}${path}`, body);
const view = (gid: string) => getJson<TransactionView>(`${coord.url}/v1/transactions/${gid}`);
const detail = (gid: string) => getJson<TransactionDetailView>(`${coord.url}/admin/transactions/${gid}`);
const beginWorkflow = (gid: string, input: Json, over: Record<string, unknown> = {}) =>
  post<TransactionView>('/v1/transactions', { mode: 'workflow', gid, timeoutMs: 60_000, workflow: { participant: RAW, name: 'flow' }, input, ...over });
const step = (gid: string, body: Record<string, unknown>) => post(`/v1/transactions/${gid}/steps`, body);
const branchStep = (stepId: string, kind: Exclude<StepKind, 'local'>, transport: keyof typeof STEPS, payload: Record<string, Json> = {}) => ({
  stepId,
  kind,
  participant: STEPS[transport],
  action: kind === 'tcc' ? 'reserve' : kind === '2pc' ? 'charge' : 'ship',
  payload,
});

const finished = (gid: string) =>
  until(`${gid} to finish`, async () => {
    const current = await view(gid);
    return current.status === 'committed' || current.status === 'rolled_back' ? current : undefined;
  });

const received = (gid: string): string[] => log.received.filter((c) => c.gid === gid).map(describeCall);
const ran = (gid: string): string[] => log.ran.filter((c) => c.gid === gid).map(describeCall);
const describeCall = (c: SeenCall) => `${c.branchId} ${c.participant === RAW ? 'raw' : c.participant === STEPS_HTTP ? 'http' : 'tcp'} ${c.action}/${c.phase} (${c.mode})`;
/** The rollback-phase calls of a gid, in the order they ran. */
const undone = (gid: string) => ran(gid).filter((c) => /\/(cancel|rollback|compensate) /.test(c));
const resumesOf = (gid: string) => rawCalls.filter((c) => c.body.gid === gid && c.body.phase === 'resume');

// ---------------------------------------------------------------------------------------------

async function startHost(extraEnv: Record<string, string> = {}): Promise<void> {
  host.start(extraEnv);
  await host.untilReady(`${HOST} to register`, async () => {
    const participants = await getJson<{ name: string; endpoint: string | null; actions: { name: string; modes: string[] }[] }[]>(`${coord.url}/v1/participants`);
    const registered = participants.find((p) => p.name === HOST);
    return registered?.actions.some((a) => a.name === 'checkout' && a.modes.includes('workflow')) && (await fetch(`${hostUrl}/`)).status < 500 ? true : undefined;
  });
}

beforeAll(async () => {
  await startRawParticipant();
  coordinatorDb = await createTestDatabase('wf_coord');
  for (const prefix of ['wf_steps_http', 'wf_steps_tcp', 'wf_host']) participantDbs.push(await participantDatabase(prefix, []));
  coord = await coordinator(`wf-coordinator-${run}`, coordinatorDb.url, {
    WORKFLOW_RESUME_MS: String(RESUME_MS),
    RECOVERY_INTERVAL_MS: '200',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '500',
    LEASE_MS: '4000',
    CALL_TIMEOUT_MS: '1500',
    ATTENTION_AFTER_ATTEMPTS: '3',
  });
  await coord.start();

  const registered = await post<{ signingSecret: string }>('/v1/participants', {
    name: RAW,
    transport: 'http',
    endpoint: `${rawUrl}/tx`,
    actions: [
      { name: 'flow', modes: ['workflow'] },
      { name: 'undo', modes: ['saga'] },
      { name: 'hold', modes: ['tcc'] },
    ],
  });
  expect(registered.status).toBeLessThan(300);
  rawSecret = registered.body.signingSecret;

  const [httpPort, tcpPort, hostPort] = [await freePort(), await freePort(), await freePort()];
  stepApps.push(await startStepParticipant({ databaseUrl: participantDbs[0].db.url, name: STEPS_HTTP, coordinatorUrl: coord.url, transport: 'http', port: httpPort, log }));
  stepApps.push(await startStepParticipant({ databaseUrl: participantDbs[1].db.url, name: STEPS_TCP, coordinatorUrl: coord.url, transport: 'tcp', port: tcpPort, log }));

  hostUrl = `http://127.0.0.1:${hostPort}`;
  host = new ManagedProcess(HOST, resolve(ROOT, 'dist/test/fixtures/workflow/workflow-host.main.js'), {
    PORT: String(hostPort),
    DATABASE_URL: participantDbs[2].db.url,
    COORDINATOR_URL: coord.url,
    PARTICIPANT_NAME: HOST,
    STEPS_HTTP,
    STEPS_TCP,
  });
  await startHost();
});

afterAll(async () => {
  await host?.kill();
  await Promise.allSettled(stepApps.map((app) => app.close()));
  await coord?.process.kill();
  await closeServer(rawServer);
  await Promise.allSettled(participantDbs.map(({ dataSource }) => dataSource.destroy()));
  await Promise.allSettled([coordinatorDb, ...participantDbs.map((p) => p.db)].filter(Boolean).map((db) => db.drop()));
});

describe('begin (PROTOCOL.md 3.1, 3.7)', () => {
  it('is 201 active with no branch, its workflow and input shown; the same body again is 200, another input 409 GID_CONFLICT', async () => {
    const gid = `wf-begin-${run}`;
    const begun = await beginWorkflow(gid, { orderId: 'o-1', lines: [1, 2] });
    expect(begun.status).toBe(201);
    expect(begun.body).toMatchObject({ gid, mode: 'workflow', status: 'active', branches: [], workflow: { participant: RAW, name: 'flow' }, input: { orderId: 'o-1', lines: [1, 2] }, result: null });
    expect((await beginWorkflow(gid, { orderId: 'o-1', lines: [1, 2] })).status).toBe(200);
    expect((await beginWorkflow(gid, { orderId: 'o-2' })).body).toMatchObject({ error: 'GID_CONFLICT' });
    expect((await post(`/v1/transactions/${gid}/rollback`, {})).status).toBe(200);
  });

  it.each<[string, Record<string, unknown>, number, string, string]>([
    ['an unknown host', { workflow: { participant: `nobody-${run}`, name: 'flow' } }, 400, 'UNKNOWN_PARTICIPANT', 'workflow.participant'],
    ['a name its host did not register with mode workflow', { workflow: { participant: RAW, name: 'undo' } }, 400, 'UNKNOWN_ACTION', 'workflow.name'],
    ['no workflow', { workflow: undefined }, 400, 'VALIDATION_FAILED', 'workflow'],
    ['branches', { branches: [{ participant: STEPS_HTTP, action: 'reserve' }] }, 400, 'VALIDATION_FAILED', 'branches'],
    ['steps', { steps: [{ name: 's1', participant: STEPS_HTTP, action: 'ship' }] }, 400, 'VALIDATION_FAILED', 'steps'],
    ['check', { check: { participant: RAW, action: 'undo' } }, 400, 'VALIDATION_FAILED', 'check'],
    ['submit', { submit: true }, 400, 'VALIDATION_FAILED', 'submit'],
    ['concurrent', { concurrent: true }, 400, 'VALIDATION_FAILED', 'concurrent'],
    ['a workflow that is not an object', { workflow: 'flow' }, 400, 'VALIDATION_FAILED', 'workflow'],
    ['a workflow name that is not a name', { workflow: { participant: RAW, name: 'a b' } }, 400, 'VALIDATION_FAILED', 'workflow.name'],
  ])('refuses %s, naming the field', async (_name, over, status, code, field) => {
    const answer = await beginWorkflow(`wf-bad-${run}`, null, over);
    expect(answer).toMatchObject({ status, body: { error: code, field } });
  });

  it.each([
    ['workflow', { workflow: { participant: RAW, name: 'flow' } }],
    ['input', { input: { any: 'json' } }],
  ])('refuses %s on another mode, naming it', async (field, over) => {
    const answer = await post('/v1/transactions', { mode: 'tcc', ...over });
    expect(answer).toMatchObject({ status: 400, body: { error: 'VALIDATION_FAILED', field } });
  });
});

describe('steps (PROTOCOL.md 3.7)', () => {
  it.each(['http', 'tcp'] as const)('each kind over %s: phase 1 in its kind, answered with its result; a local step with its own', async (transport) => {
    const gid = `wf-kinds-${transport}-${run}`;
    await beginWorkflow(gid, { transport });
    const participant = STEPS[transport];
    expect(await step(gid, branchStep('1', 'tcc', transport, { qty: 2 }))).toEqual({ status: 201, body: { branchId: '1', status: 'prepared', result: { reserved: 2, by: participant } } });
    expect(await step(gid, branchStep('2', '2pc', transport, { amount: 30 }))).toEqual({ status: 201, body: { branchId: '2', status: 'prepared', result: { charged: 30, by: participant } } });
    expect(await step(gid, branchStep('3', 'saga', transport))).toEqual({ status: 201, body: { branchId: '3', status: 'committed', result: { parcel: 'parcel-3', by: participant } } });
    expect(await step(gid, { stepId: 'pick', kind: 'local', result: { picked: [1, 2] } })).toEqual({ status: 201, body: { branchId: 'pick', status: 'committed', result: { picked: [1, 2] } } });
    // Each participant was called in the mode of the step's kind, so it served it as any branch.
    expect(received(gid)).toEqual([`1 ${transport} reserve/try (tcc)`, `2 ${transport} charge/prepare (2pc)`, `3 ${transport} ship/execute (saga)`]);

    const shown = await view(gid);
    expect(shown.branches.map((b) => [b.branchId, b.kind, b.participant, b.action, b.status])).toEqual([
      ['1', 'tcc', participant, 'reserve', 'prepared'],
      ['2', '2pc', participant, 'charge', 'prepared'],
      ['3', 'saga', participant, 'ship', 'committed'],
      ['pick', 'local', RAW, 'flow', 'committed'],
    ]);
    expect((await post(`/v1/transactions/${gid}/rollback`, { wait: true })).body).toMatchObject({ status: 'rolled_back' });
  });

  it('a step answered long-running (202) is answered 202 pending, asked again by the coordinator until prepared, then committed', async () => {
    const gid = `wf-long-${run}`;
    await beginWorkflow(gid, null);
    const accepted = await step(gid, { stepId: '1', kind: 'tcc', participant: RAW, action: 'hold', payload: { approval: 'ann' } });
    expect(accepted).toEqual({ status: 202, body: { branchId: '1', status: 'pending' } });
    const prepared = await until(`${gid}'s step to be prepared`, async () => {
      const [first] = (await view(gid)).branches;
      return first.status === 'prepared' ? first : undefined;
    });
    expect(prepared).toMatchObject({ kind: 'tcc', result: { held: true }, waitingSince: null });
    // The host's replay of the step gets the recorded outcome; the participant was asked twice in all, by the coordinator.
    expect(await step(gid, { stepId: '1', kind: 'tcc', participant: RAW, action: 'hold', payload: { approval: 'ann' } })).toEqual({
      status: 201,
      body: { branchId: '1', status: 'prepared', result: { held: true } },
    });
    const tries = () => rawCalls.filter((c) => c.body.gid === gid && c.body.phase === 'try');
    expect(tries().map((c) => c.body)).toEqual([1, 2].map(() => ({ gid, branchId: '1', mode: 'tcc', action: 'hold', phase: 'try', payload: { approval: 'ann' } })));
    expect((await post(`/v1/transactions/${gid}/commit`, { wait: true })).body).toMatchObject({ status: 'committed' });
    expect(ran(gid)).toEqual(['1 raw hold/confirm (tcc)']);
  });

  it('the same stepId again answers the recorded outcome and calls no one', async () => {
    const gid = `wf-again-${run}`;
    await beginWorkflow(gid, null);
    const first = [
      await step(gid, branchStep('1', 'tcc', 'http', { qty: 1 })),
      await step(gid, branchStep('2', 'saga', 'tcp')),
      await step(gid, { stepId: '3', kind: 'local', result: 'first' }),
    ];
    const calls = received(gid);
    // The replay: the same steps (a local step's code ran again and returned something else: the record wins).
    const again = [
      await step(gid, branchStep('1', 'tcc', 'http', { qty: 1 })),
      await step(gid, branchStep('2', 'saga', 'tcp')),
      await step(gid, { stepId: '3', kind: 'local', result: 'second' }),
    ];
    expect(again).toEqual(first);
    expect(again[2].body).toMatchObject({ result: 'first' });
    expect(received(gid)).toEqual(calls);
    expect(calls).toHaveLength(2);
    await post(`/v1/transactions/${gid}/rollback`, { wait: true });
  });

  it('the same stepId with another kind, participant or action is 409 STEP_MISMATCH, and calls no one', async () => {
    const gid = `wf-mismatch-${run}`;
    await beginWorkflow(gid, null);
    await step(gid, branchStep('1', 'tcc', 'http'));
    await step(gid, { stepId: '2', kind: 'local', result: 1 });
    const calls = received(gid);
    for (const changed of [
      { ...branchStep('1', 'tcc', 'http'), kind: '2pc', action: 'charge' },
      { ...branchStep('1', 'tcc', 'http'), participant: STEPS_TCP },
      { ...branchStep('1', 'tcc', 'http'), action: 'charge' },
      { stepId: '1', kind: 'local', result: null },
      branchStep('2', 'saga', 'http'),
    ]) {
      const answer = await step(gid, changed);
      expect(answer).toMatchObject({ status: 409, body: { error: 'STEP_MISMATCH', transaction: { gid, status: 'active' } } });
    }
    expect(received(gid)).toEqual(calls);
    await post(`/v1/transactions/${gid}/rollback`, { wait: true });
  });

  it('refuses what is not a step of a workflow, naming the field, before calling anyone', async () => {
    const gid = `wf-refuse-${run}`;
    await beginWorkflow(gid, null);
    const bad: Array<[Record<string, unknown>, number, string, string | undefined]> = [
      [{ stepId: '1', kind: 'tcc', action: 'reserve' }, 400, 'VALIDATION_FAILED', 'participant'],
      [{ stepId: '1', kind: 'tcc', participant: STEPS_HTTP }, 400, 'VALIDATION_FAILED', 'action'],
      [{ ...branchStep('1', 'tcc', 'http'), result: 1 }, 400, 'VALIDATION_FAILED', 'result'],
      [{ stepId: '1', kind: 'local' }, 400, 'VALIDATION_FAILED', 'result'],
      [{ stepId: '1', kind: 'local', result: 1, participant: STEPS_HTTP }, 400, 'VALIDATION_FAILED', 'participant'],
      [{ stepId: '1', kind: 'xa', participant: STEPS_HTTP, action: 'reserve' }, 400, 'VALIDATION_FAILED', 'kind'],
      [{ stepId: 'a b', kind: 'local', result: 1 }, 400, 'VALIDATION_FAILED', 'stepId'],
      [{ ...branchStep('1', 'tcc', 'http'), action: 'ship' }, 400, 'UNKNOWN_ACTION', 'action'],
      [{ ...branchStep('1', 'tcc', 'http'), participant: `nobody-${run}` }, 400, 'UNKNOWN_PARTICIPANT', 'participant'],
      [{ stepId: '1', kind: 'local', result: 1, compensate: { participant: STEPS_HTTP, action: 'reserve' } }, 400, 'UNKNOWN_ACTION', 'compensate.action'],
    ];
    for (const [body, status, code, field] of bad) {
      expect(await step(gid, body), JSON.stringify(body)).toMatchObject({ status, body: { error: code, ...(field ? { field } : {}) } });
    }
    expect((await view(gid)).branches).toEqual([]);
    expect(received(gid)).toEqual([]);

    const tcc = `wf-not-a-workflow-${run}`;
    await post('/v1/transactions', { mode: 'tcc', gid: tcc });
    expect(await step(tcc, branchStep('1', 'tcc', 'http'))).toMatchObject({ status: 400, body: { error: 'WRONG_MODE' } });
    expect(await post(`/v1/transactions/${gid}/branches`, { participant: STEPS_HTTP, action: 'reserve' })).toMatchObject({ status: 400, body: { error: 'WRONG_MODE' } });
    expect(await step(`wf-nobody-${run}`, branchStep('1', 'tcc', 'http'))).toMatchObject({ status: 404, body: { error: 'TX_NOT_FOUND' } });
    await post(`/v1/transactions/${gid}/rollback`, { wait: true });
    expect(await step(gid, branchStep('1', 'tcc', 'http'))).toMatchObject({ status: 409, body: { error: 'TX_NOT_ACTIVE' } });
    expect(received(gid)).toEqual([]);
  });
});

describe('decide (PROTOCOL.md 3.3, 3.7)', () => {
  it('a failed step ends nothing by itself; a commit then is 409 CANNOT_COMMIT, rolled back (branch_failed), every step undone', async () => {
    const gid = `wf-failed-${run}`;
    await beginWorkflow(gid, null);
    await step(gid, branchStep('1', 'tcc', 'http'));
    const refused = await step(gid, branchStep('2', 'tcc', 'tcp', { fail: true }));
    // Over TCP a refusal is `{ outcome: 'failed', message }` (5.2): its message is the step's lastError.
    expect(refused).toMatchObject({ status: 409, body: { error: 'BRANCH_FAILED', branchId: '2', status: 'failed', lastError: { message: 'reserve refused' } } });
    expect((await view(gid)).status).toBe('active');

    const commit = await post(`/v1/transactions/${gid}/commit`, { result: { never: 'kept' } });
    expect(commit).toMatchObject({ status: 409, body: { error: 'CANNOT_COMMIT', transaction: { gid, reason: 'branch_failed' } } });
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'branch_failed', result: null });
    // Both steps got their cancel (5.3: whatever their status), the newest first.
    expect(received(gid).filter((c) => c.endsWith('/cancel (tcc)'))).toEqual(['2 tcp reserve/cancel (tcc)', '1 http reserve/cancel (tcc)']);
  });

  it('commit confirms / commits the tcc and 2pc steps, sends nothing to saga and local steps, and keeps its result', async () => {
    const gid = `wf-commit-${run}`;
    await beginWorkflow(gid, { order: 1 });
    await step(gid, branchStep('1', 'tcc', 'http'));
    await step(gid, branchStep('2', 'saga', 'tcp'));
    await step(gid, { stepId: '3', kind: 'local', result: 'INV-1', compensate: { participant: RAW, action: 'undo', payload: { invoice: 'INV-1' } } });
    await step(gid, branchStep('4', '2pc', 'tcp', { amount: 5 }));
    const committed = await post<TransactionView>(`/v1/transactions/${gid}/commit`, { result: { orderId: 'o-1', invoice: 'INV-1' }, wait: true });
    expect(committed).toMatchObject({ status: 200, body: { status: 'committed', result: { orderId: 'o-1', invoice: 'INV-1' } } });
    expect((await view(gid)).result).toEqual({ orderId: 'o-1', invoice: 'INV-1' });
    expect((await view(gid)).branches.map((b) => b.status)).toEqual(['committed', 'committed', 'committed', 'committed']);
    expect(received(gid).slice(3).sort()).toEqual(['1 http reserve/confirm (tcc)', '4 tcp charge/commit (2pc)']);
    // Nothing undoes the local step: its compensation is never called on a commit.
    expect(rawCalls.filter((c) => c.body.gid === gid && c.body.phase !== 'resume')).toEqual([]);
    // Only the first decision counts: the commit again is answered as it was decided, its result the first one's.
    expect(await post<TransactionView>(`/v1/transactions/${gid}/commit`, { result: 'other' })).toMatchObject({ status: 200, body: { result: { orderId: 'o-1', invoice: 'INV-1' } } });
    expect(await post(`/v1/transactions/${gid}/rollback`, {})).toMatchObject({ status: 409, body: { error: 'TX_ALREADY_DECIDED' } });
  });

  it('a result is only for a workflow: a tcc commit carrying one is 400, naming it', async () => {
    const gid = `wf-tcc-result-${run}`;
    await post('/v1/transactions', { mode: 'tcc', gid });
    expect(await post(`/v1/transactions/${gid}/commit`, { result: 1 })).toMatchObject({ status: 400, body: { error: 'VALIDATION_FAILED', field: 'result' } });
    expect(await post(`/v1/transactions/${gid}/rollback`, { result: 1 })).toMatchObject({ status: 400, body: { error: 'VALIDATION_FAILED' } });
    expect((await view(gid)).status).toBe('active');
  });

  it('rollback undoes the steps newest first, each after the newer ones answered, a local step by its compensation', async () => {
    const gid = `wf-rollback-${run}`;
    await beginWorkflow(gid, null);
    await step(gid, branchStep('1', 'tcc', 'http'));
    await step(gid, { stepId: '2', kind: 'local', result: 'INV-2', compensate: { participant: RAW, action: 'undo', payload: { invoice: 'INV-2' } } });
    await step(gid, branchStep('3', 'saga', 'tcp'));
    await step(gid, { stepId: '4', kind: 'local', result: 'no undo' });
    await step(gid, branchStep('5', '2pc', 'http'));
    expect((await post(`/v1/transactions/${gid}/rollback`, { wait: true })).body).toMatchObject({ status: 'rolled_back', reason: 'client' });
    expect(undone(gid)).toEqual([
      '5 http charge/rollback (2pc)',
      '3 tcp ship/compensate (saga)',
      '2 raw undo/compensate (saga)',
      '1 http reserve/cancel (tcc)',
    ]);
    const [compensation] = rawCalls.filter((c) => c.body.gid === gid && c.body.phase === 'compensate');
    expect(compensation).toMatchObject({ path: '/tx/undo/compensate', body: { branchId: '2', mode: 'saga', action: 'undo', phase: 'compensate', payload: { invoice: 'INV-2' } } });
    expect((await view(gid)).branches.every((b) => b.status === 'rolled_back')).toBe(true);
  });

  it("a local step's compensation on an SDK participant's @LocalStepCompensation runs its method exactly once, a repeat skipped by its barrier", async () => {
    const gid = `wf-local-undo-${run}`;
    await beginWorkflow(gid, null);
    await step(gid, branchStep('1', 'tcc', 'http'));
    // Over TCP, slower than the coordinator's call timeout (1.5 s): sent again while the first call still runs.
    const slow = { participant: STEPS_TCP, action: 'voidInvoice', payload: { invoice: 'INV-5', slowMs: 2_500 } };
    expect(await step(gid, { stepId: '2', kind: 'local', result: 'INV-5', compensate: slow })).toMatchObject({ status: 201 });
    const quick = { participant: STEPS_HTTP, action: 'voidInvoice', payload: { invoice: 'INV-6' } };
    expect(await step(gid, { stepId: '3', kind: 'local', result: 'INV-6', compensate: quick })).toMatchObject({ status: 201 });
    expect((await post(`/v1/transactions/${gid}/rollback`, {})).status).toBeLessThan(300);
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'client' });
    expect(done.branches.map((b) => b.status)).toEqual(['rolled_back', 'rolled_back', 'rolled_back']);
    // Each compensation ran once, newest step first, though no execute ever reached its participant.
    expect(undone(gid)).toEqual(['3 http voidInvoice/compensate (saga)', '2 tcp voidInvoice/compensate (saga)', '1 http reserve/cancel (tcc)']);
    const calls = received(gid).filter((c) => c.includes('voidInvoice'));
    expect(calls.filter((c) => c.startsWith('3 '))).toEqual(['3 http voidInvoice/compensate (saga)']);
    // The slow one reached its participant more than once: the repeat found its barrier row and was skipped.
    expect(calls.filter((c) => c.startsWith('2 ')).length).toBeGreaterThan(1);
    expect(calls.every((c) => c.endsWith('/compensate (saga)'))).toBe(true);
  });
});

describe('resume (PROTOCOL.md 3.7)', () => {
  it('a host quiet for the resume interval is called, signed, with its input; its replay calls no one again, and its decision counts', async () => {
    const gid = `wf-quiet-${run}`;
    let replayed: Answer | null = null;
    resumeScripts.set(gid, async (_call, nth): Promise<{ status: number; body: Json }> => {
      // The first resume: still running. The second: the host runs the function again, its
      // recorded step replays, and it commits.
      if (nth === 1) return { status: 202, body: { retryAfterMs: 200 } };
      replayed = await step(gid, branchStep('1', 'tcc', 'http', { qty: 3 }));
      await post(`/v1/transactions/${gid}/commit`, { result: { resumed: true } });
      return { status: 200, body: { status: 'committed' } };
    });
    await beginWorkflow(gid, { cart: ['a', 'b'] });
    await step(gid, branchStep('1', 'tcc', 'http', { qty: 3 }));
    // The host goes quiet here: it records nothing more and decides nothing.
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'committed', result: { resumed: true } });
    expect(replayed).toEqual({ status: 201, body: { branchId: '1', status: 'prepared', result: { reserved: 3, by: STEPS_HTTP } } });
    expect(received(gid)).toEqual(['1 http reserve/try (tcc)', '1 http reserve/confirm (tcc)']);

    const resumes = resumesOf(gid);
    expect(resumes.length).toBeGreaterThanOrEqual(2);
    expect(resumes[0]).toMatchObject({
      path: '/tx/flow/resume',
      headers: { 'x-tx-gid': gid, 'x-tx-branch-id': 'resume', 'webhook-id': `${gid}/resume/resume` },
      body: { gid, branchId: 'resume', mode: 'workflow', action: 'flow', phase: 'resume', payload: { cart: ['a', 'b'] } },
    });
    expect(refusedCalls).toEqual([]);
    // The first resume's 202 is recorded as an answer (still running, 3.6), never a failure: nothing flagged.
    const history = await detail(gid);
    const [firstResume] = history.events.filter((e) => e.type === 'call' && e.branchId === 'resume');
    expect(firstResume.detail).toMatchObject({ participant: RAW, action: 'flow', phase: 'resume', outcome: 'ongoing' });
    expect(history.needsAttention).toBe(false);
  });

  it("an operator's retry resumes an active workflow's host now (an active tcc transaction has nothing to retry: 409)", async () => {
    const gid = `wf-retried-${run}`;
    resumeScripts.set(gid, async (): Promise<{ status: number; body: Json }> => {
      await post(`/v1/transactions/${gid}/commit`, {});
      return { status: 200, body: { status: 'committed' } };
    });
    await beginWorkflow(gid, null);
    await step(gid, branchStep('1', 'tcc', 'http'));
    const retried = await post(`/admin/transactions/${gid}/retry`, {});
    expect(retried.status).toBe(200);
    const done = await finished(gid);
    expect(done.status).toBe('committed');
    // Until 2026-12-07 the retry of an active workflow was refused (409 TX_NOT_ACTIVE, nothing to retry).
    expect((await detail(gid)).events.filter((e) => e.type === 'admin_retry')).toHaveLength(1);
    expect(resumesOf(gid).length).toBeGreaterThanOrEqual(1);

    const tccGid = `wf-retried-tcc-${run}`;
    await post('/v1/transactions', { mode: 'tcc', gid: tccGid, timeoutMs: 60_000 });
    expect((await post(`/admin/transactions/${tccGid}/retry`, {})).body).toMatchObject({ error: 'TX_NOT_ACTIVE' });
    await post(`/v1/transactions/${tccGid}/rollback`, {});
  });

  it('a host that cannot replay it (409) is asked again and the workflow flagged for attention, until it is decided', async () => {
    const gid = `wf-mismatched-${run}`;
    resumeScripts.set(gid, () => Promise.resolve({ status: 409, body: { error: 'STEP_MISMATCH', reason: 'step_mismatch' } }));
    await beginWorkflow(gid, null);
    await step(gid, branchStep('1', 'saga', 'http'));
    const flagged = await until(`${gid} to be flagged`, async () => {
      const current = await detail(gid);
      return current.needsAttention && resumesOf(gid).length >= 2 ? current : undefined;
    });
    expect(flagged.status).toBe('active');
    expect(flagged.events.some((e) => e.type === 'attention')).toBe(true);
    expect((await post(`/v1/transactions/${gid}/rollback`, { wait: true })).body).toMatchObject({ status: 'rolled_back' });
    expect(undone(gid)).toEqual(['1 http ship/compensate (saga)']);
  });

  it('at the deadline an active workflow is rolled back (timeout), its steps undone newest first', async () => {
    const gid = `wf-deadline-${run}`;
    // Its host answers every resume "still running" and never decides.
    await beginWorkflow(gid, null, { timeoutMs: 4_000 });
    await step(gid, branchStep('1', 'tcc', 'http'));
    await step(gid, { stepId: '2', kind: 'local', result: 1, compensate: { participant: RAW, action: 'undo', payload: {} } });
    await step(gid, branchStep('3', 'saga', 'tcp'));
    await step(gid, branchStep('4', '2pc', 'tcp'));
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'rolled_back', reason: 'timeout' });
    expect(undone(gid)).toEqual(['4 tcp charge/rollback (2pc)', '3 tcp ship/compensate (saga)', '2 raw undo/compensate (saga)', '1 http reserve/cancel (tcc)']);
  });
});

describe('an SDK host (@Workflow, WorkflowClient)', () => {
  const runWorkflow = (name: string, gid: string, input: Json) => postJson<RunAnswer>(`${hostUrl}/workflows/${name}/run`, { gid, input });

  it('WorkflowClient.run commits with the function\'s result, its steps confirmed over HTTP and TCP', async () => {
    const gid = `wf-sdk-${run}`;
    const answer = await runWorkflow('checkout', gid, { qty: 2, amount: 40 });
    const invoice = `INV-2-${gid}`;
    const result = {
      reserved: { reserved: 2, by: STEPS_HTTP },
      invoice,
      charged: { charged: 40, by: STEPS_TCP },
      shipped: { parcel: 'parcel-4', by: STEPS_HTTP },
    };
    expect(answer).toEqual({ status: 200, body: { status: 'committed', result } });
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'committed', workflow: { participant: HOST, name: 'checkout' }, input: { qty: 2, amount: 40 }, result });
    expect(done.branches.map((b) => [b.branchId, b.kind])).toEqual([['1', 'tcc'], ['invoice', 'local'], ['3', '2pc'], ['4', 'saga']]);
    expect(received(gid).slice(0, 3)).toEqual(['1 http reserve/try (tcc)', '3 tcp charge/prepare (2pc)', '4 http ship/execute (saga)']);
    expect(received(gid).slice(3).sort()).toEqual(['1 http reserve/confirm (tcc)', '3 tcp charge/commit (2pc)']);
  });

  it('a function that throws rolls its workflow back, and WorkflowClient.run says so', async () => {
    const gid = `wf-sdk-throws-${run}`;
    expect(await runWorkflow('changeOfMind', gid, { qty: 1, amount: 0 })).toMatchObject({ status: 200, body: { status: 'rolled_back', reason: 'client' } });
    expect(await finished(gid)).toMatchObject({ status: 'rolled_back', reason: 'client' });
    expect(received(gid)).toEqual(['1 tcp reserve/try (tcc)', '1 tcp reserve/cancel (tcc)']);
  });

  it('killed -9 between two steps and started again: the resume replays it, no step\'s participant is called twice, and it commits', async () => {
    const gid = `wf-sdk-killed-${run}`;
    await host.kill();
    // This process never finishes the workflow's local step: it is killed there.
    await startHost({ HOLD_LOCAL_STEP_OF: gid });
    const started = postJson<RunAnswer>(`${hostUrl}/workflows/checkout/run`, { gid, input: { qty: 1, amount: 10 } }).catch((error: unknown) => error);
    await until(`${gid}'s first step`, async () => ((await view(gid).catch(() => null))?.branches[0]?.status === 'prepared' ? true : undefined));
    await host.kill('SIGKILL');
    await started;
    expect(received(gid)).toEqual(['1 http reserve/try (tcc)']);

    await startHost();
    const done = await finished(gid);
    expect(done).toMatchObject({ status: 'committed', result: { invoice: `INV-1-${gid}`, reserved: { reserved: 1, by: STEPS_HTTP } } });
    expect(done.branches.map((b) => [b.branchId, b.kind, b.status])).toEqual([
      ['1', 'tcc', 'committed'],
      ['invoice', 'local', 'committed'],
      ['3', '2pc', 'committed'],
      ['4', 'saga', 'committed'],
    ]);
    // Each step's participant got its phase 1 once: the replay took step 1 from the record.
    const calls = received(gid);
    expect(calls.filter((c) => /\/(try|prepare|execute) /.test(c))).toEqual(['1 http reserve/try (tcc)', '3 tcp charge/prepare (2pc)', '4 http ship/execute (saga)']);
    expect(calls.filter((c) => /\/(confirm|commit) /.test(c)).sort()).toEqual(['1 http reserve/confirm (tcc)', '3 tcp charge/commit (2pc)']);
    // Nobody asked the new process to run it: the coordinator's resume did, and the run it started decided.
    expect(readFileSync(host.logFile, 'utf8')).toContain(`workflow checkout gid=${gid} committed`);
  });
});

describe('step answers written with the next write (WORKFLOW_ANSWER_HOLD_MS)', () => {
  it('answers held by an instance killed -9 are asked again: the host replaying a step, or committing on another instance, gets what its participant answered first', async () => {
    // A second instance on the same log, whose step answers wait a minute for the workflow's next write.
    const holder = await coordinator(`wf-holder-${run}`, coordinatorDb.url, {
      WORKFLOW_ANSWER_HOLD_MS: '60000',
      WORKFLOW_RESUME_MS: '600000',
      RECOVERY_INTERVAL_MS: '200',
      LEASE_MS: '4000',
      CALL_TIMEOUT_MS: '1500',
    });
    await holder.start();
    try {
      const gid = `wf-held-${run}`;
      const on = (url: string) => ({
        post: <T = Record<string, unknown>>(path: string, body: unknown) => postJson<T>(`${url}${path}`, body),
        view: (id: string) => getJson<TransactionView>(`${url}/v1/transactions/${id}`),
      });
      const a = on(holder.url);
      const b = on(coord.url);
      expect((await a.post('/v1/transactions', { mode: 'workflow', gid, timeoutMs: 60_000, workflow: { participant: RAW, name: 'flow' }, input: null })).status).toBe(201);
      expect(await a.post(`/v1/transactions/${gid}/steps`, branchStep('1', 'tcc', 'http'))).toMatchObject({ status: 201, body: { status: 'prepared' } });
      expect(await a.post(`/v1/transactions/${gid}/steps`, branchStep('2', 'tcc', 'tcp'))).toMatchObject({ status: 201, body: { status: 'prepared' } });
      // The instance that answered reads its steps answered; step 1's answer went with step 2's record, step 2's is held.
      expect((await a.view(gid)).branches.map((s) => s.status)).toEqual(['prepared', 'prepared']);
      expect((await b.view(gid)).branches.map((s) => s.status)).toEqual(['prepared', 'pending']);

      await holder.process.kill('SIGKILL');
      // The host replays step 2 on the other instance: its participant asked again (the same call), answered as before.
      expect(await b.post(`/v1/transactions/${gid}/steps`, branchStep('2', 'tcc', 'tcp'))).toMatchObject({ status: 201, body: { status: 'prepared' } });
      expect(received(gid)).toEqual(['1 http reserve/try (tcc)', '2 tcp reserve/try (tcc)', '2 tcp reserve/try (tcc)']);
      expect(ran(gid)).toEqual(['1 http reserve/try (tcc)', '2 tcp reserve/try (tcc)']);
      const committed = await b.post<TransactionView>(`/v1/transactions/${gid}/commit`, { wait: true });
      expect(committed).toMatchObject({ status: 200, body: { status: 'committed' } });
      expect(received(gid).filter((c) => c.endsWith('/confirm (tcc)')).sort()).toEqual(['1 http reserve/confirm (tcc)', '2 tcp reserve/confirm (tcc)']);

      // A commit on another instance while the answering one still holds a step's answer: asked again, committed, not rolled back.
      await holder.start();
      const gid2 = `wf-held-2-${run}`;
      await a.post('/v1/transactions', { mode: 'workflow', gid: gid2, timeoutMs: 60_000, workflow: { participant: RAW, name: 'flow' }, input: null });
      await a.post(`/v1/transactions/${gid2}/steps`, branchStep('1', 'tcc', 'http'));
      expect((await b.view(gid2)).branches.map((s) => [s.status, s.attempts])).toEqual([['pending', 0]]);
      expect(await b.post<TransactionView>(`/v1/transactions/${gid2}/commit`, { wait: true })).toMatchObject({ status: 200, body: { status: 'committed' } });
      expect(received(gid2)).toEqual(['1 http reserve/try (tcc)', '1 http reserve/try (tcc)', '1 http reserve/confirm (tcc)']);
      expect(ran(gid2)).toEqual(['1 http reserve/try (tcc)', '1 http reserve/confirm (tcc)']);
    } finally {
      await holder.process.kill();
    }
  });
});
