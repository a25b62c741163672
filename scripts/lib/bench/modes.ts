/**
 * What one transaction of each bench mode is: the client requests to the coordinator, and the
 * "direct" baseline, the same participant calls the coordinator makes for that mode, made by the
 * bench client itself (PROTOCOL.md 5.1 bodies). Each resolves with null when the transaction
 * succeeded, else with why not: an error status or a transaction seen rolling back (a network
 * error rejects).
 */
import { callId, signCall, type Phase, type PhaseCallBody } from '@nest-dtx/protocol';
import type { ModeName } from './options.js';
import { postJson, postSerialised, type HttpAnswer } from './http-client.js';
import type { BenchParticipants, BenchSide } from './participants.js';

export interface ModeSpec {
  name: ModeName;
  description: string;
  /** Client requests per transaction. */
  requests: number;
  /** Whether it begins msg transactions (the plain participants then register the mode). */
  usesMsg?: boolean;
  /** Whether it begins workflows (the bench then starts and registers their host, workflow-host.ts). */
  usesWorkflow?: boolean;
  /** Transaction number `i` of a run, with its unique gid. */
  viaCoordinator(coordinatorUrl: string, gid: string, i: number, parts: BenchParticipants): Promise<Failure>;
  direct(gid: string, i: number, parts: BenchParticipants): Promise<Failure>;
}

/** Null: success; else what went wrong. */
export type Failure = string | null;

const ok = (answer: HttpAnswer): boolean => answer.status >= 200 && answer.status < 300;
const codeOf = (answer: HttpAnswer): string => {
  const body = answer.body as { error?: unknown; message?: unknown } | null;
  return body && typeof body.error === 'string' ? ` ${body.error}${typeof body.message === 'string' ? `: ${body.message}` : ''}` : '';
};
/** Null when `good`, else the request, its status and error code. */
const check = (what: string, answer: HttpAnswer, good = ok(answer)): Failure =>
  good ? null : `${what}: ${answer.status}${codeOf(answer)}${ok(answer) ? ` (status ${statusOf(answer)})` : ''}`;
const firstOf = (...failures: Failure[]): Failure => failures.find((f) => f !== null) ?? null;
const statusOf = (answer: HttpAnswer): string | null => {
  const body = answer.body as { status?: unknown } | null;
  return body && typeof body.status === 'string' ? body.status : null;
};
const decidedCommit = (what: string, answer: HttpAnswer): Failure =>
  check(what, answer, ok(answer) && statusOf(answer) !== 'rolling_back' && statusOf(answer) !== 'rolled_back');

/**
 * One participant call as the coordinator makes it (PROTOCOL.md 5.1), signed as it signs it
 * (5.5): the SDK participants refuse unsigned calls, and the baseline pays what the coordinator pays.
 */
function call(side: BenchSide, gid: string, i: number, branchId: string, mode: PhaseCallBody['mode'], phase: Phase): Promise<HttpAnswer> {
  const body: PhaseCallBody = { gid, branchId, mode, action: side.action, phase, payload: side.payload(i) };
  const payload = JSON.stringify(body);
  return postSerialised(`${side.endpoint}/${side.action}/${phase}`, payload, {
    'x-tx-gid': gid,
    'x-tx-branch-id': branchId,
    ...signCall(side.keys, callId(body), Date.now() / 1000, payload),
  });
}

async function directSaga(gid: string, i: number, parts: BenchParticipants): Promise<Failure> {
  const a = check('execute a', await call(parts.a, gid, i, 's1', 'saga', 'execute'));
  return a ?? check('execute b', await call(parts.b, gid, i, 's2', 'saga', 'execute'));
}

/** Phase 1 on both in parallel, then phase 2 on both in parallel. */
async function directTwoPhase(gid: string, i: number, parts: BenchParticipants, mode: 'tcc' | '2pc'): Promise<Failure> {
  const [first, second]: [Phase, Phase] = mode === 'tcc' ? ['try', 'confirm'] : ['prepare', 'commit'];
  const phase1 = await Promise.all([call(parts.a, gid, i, 'a', mode, first), call(parts.b, gid, i, 'b', mode, first)]);
  const failed1 = firstOf(...phase1.map((answer) => check(first, answer)));
  if (failed1) return failed1;
  const phase2 = await Promise.all([call(parts.a, gid, i, 'a', mode, second), call(parts.b, gid, i, 'b', mode, second)]);
  return firstOf(...phase2.map((answer) => check(second, answer)));
}

const branch = (side: BenchSide, i: number, branchId: string) => ({ branchId, participant: side.participant, action: side.action, payload: side.payload(i) });
const msgBranch = (side: BenchSide, i: number, branchId: string) => ({ branchId, participant: side.participant, action: side.msgAction, payload: side.payload(i) });

/** What the coordinator sends for a message: execute on both branches, in parallel. */
async function directMsg(gid: string, i: number, parts: BenchParticipants): Promise<Failure> {
  const answers = await Promise.all([
    call({ ...parts.a, action: parts.a.msgAction }, gid, i, 'a', 'msg', 'execute'),
    call({ ...parts.b, action: parts.b.msgAction }, gid, i, 'b', 'msg', 'execute'),
  ]);
  return firstOf(...answers.map((answer) => check('execute', answer)));
}

/**
 * A message of two branches: prepared (begin) then submitted (commit, wait: false), the two
 * requests of the SDK's doAndSubmit around the caller's local transaction (not measured here);
 * or, with `submit`, the durable fan-out of one begin.
 */
function message(submit: boolean) {
  return async (url: string, gid: string, i: number, parts: BenchParticipants): Promise<Failure> => {
    const body = { mode: 'msg', gid, check: parts.msgCheck, branches: [msgBranch(parts.a, i, 'a'), msgBranch(parts.b, i, 'b')] };
    if (submit) return decidedCommit('begin msg (submit)', await postJson(`${url}/v1/transactions`, { ...body, submit: true, wait: false }));
    const begun = check('begin msg', await postJson(`${url}/v1/transactions`, body));
    if (begun) return begun;
    const tx = `${url}/v1/transactions/${gid}`;
    const failure = decidedCommit('submit', await postJson(`${tx}/commit`, { wait: false }));
    if (failure) await postJson(`${tx}/rollback`, {}).catch(() => undefined);
    return failure;
  };
}

function saga(wait: boolean) {
  return async (url: string, gid: string, i: number, parts: BenchParticipants): Promise<Failure> => {
    const answer = await postJson(`${url}/v1/transactions`, {
      mode: 'saga',
      gid,
      wait,
      steps: [
        { name: 's1', participant: parts.a.participant, action: parts.a.action, payload: parts.a.payload(i) },
        { name: 's2', participant: parts.b.participant, action: parts.b.action, payload: parts.b.payload(i) },
      ],
    });
    return wait ? check('begin saga', answer, ok(answer) && statusOf(answer) === 'committed') : decidedCommit('begin saga', answer);
  };
}

/** `at`: the sides' AT actions rather than their own. */
function oneShot(mode: 'tcc' | '2pc', actions: 'own' | 'at' = 'own') {
  const as = (side: BenchSide): BenchSide => (actions === 'at' ? { ...side, action: side.atAction } : side);
  return async (url: string, gid: string, i: number, parts: BenchParticipants): Promise<Failure> =>
    decidedCommit(`begin ${mode}`, await postJson(`${url}/v1/transactions`, { mode, gid, wait: false, branches: [branch(as(parts.a), i, 'a'), branch(as(parts.b), i, 'b')] }));
}

/** Begin, add branch a, add branch b, commit: four requests, all to the same instance. */
function interactive(mode: 'tcc' | '2pc') {
  return async (url: string, gid: string, i: number, parts: BenchParticipants): Promise<Failure> => {
    const begun = check(`begin ${mode}`, await postJson(`${url}/v1/transactions`, { mode, gid }));
    if (begun) return begun;
    const tx = `${url}/v1/transactions/${gid}`;
    const failure =
      check('add branch a', await postJson(`${tx}/branches`, branch(parts.a, i, 'a'))) ??
      check('add branch b', await postJson(`${tx}/branches`, branch(parts.b, i, 'b'))) ??
      decidedCommit('commit', await postJson(`${tx}/commit`, { wait: false }));
    // Leave nothing active behind a failure (the run drains until every transaction is terminal).
    if (failure) await postJson(`${tx}/rollback`, {}).catch(() => undefined);
    return failure;
  };
}

/**
 * A workflow's deadline: far beyond any bench transaction, and short enough that one a failed
 * run left active is rolled back by the coordinator before long.
 */
const WORKFLOW_TIMEOUT_MS = 60_000;
const tccStep = (side: BenchSide, i: number, stepId: string) => ({ stepId, kind: 'tcc', participant: side.participant, action: side.action, payload: side.payload(i) });
/** 3.7: a tcc step is answered as 3.2 answers a branch, 201 prepared with the try's result. */
const stepPrepared = (what: string, answer: HttpAnswer): Failure => check(what, answer, answer.status === 201 && statusOf(answer) === 'prepared');

/**
 * A workflow of two tcc steps (PROTOCOL.md 3.7), driven as its host would drive it: begin, record
 * step a, record step b (the coordinator tries each as it is recorded), commit (confirm both, in
 * the background: wait false, as the other modes). Four requests, all to the same instance.
 */
async function workflow(url: string, gid: string, i: number, parts: BenchParticipants): Promise<Failure> {
  const host = parts.workflowHost;
  if (!host) throw new Error('mode workflow needs the bench workflow host (BenchParticipants.workflowHost)');
  const begun = check(
    'begin workflow',
    await postJson(`${url}/v1/transactions`, { mode: 'workflow', gid, timeoutMs: WORKFLOW_TIMEOUT_MS, workflow: { participant: host.participant, name: host.name }, input: { i } }),
  );
  if (begun) return begun;
  const tx = `${url}/v1/transactions/${gid}`;
  const failure =
    stepPrepared('step a', await postJson(`${tx}/steps`, tccStep(parts.a, i, 'a'))) ??
    stepPrepared('step b', await postJson(`${tx}/steps`, tccStep(parts.b, i, 'b'))) ??
    decidedCommit('commit', await postJson(`${tx}/commit`, { wait: false }));
  if (failure) await postJson(`${tx}/rollback`, {}).catch(() => undefined);
  return failure;
}

export const MODES: Record<ModeName, ModeSpec> = {
  saga: {
    name: 'saga',
    description: 'saga of two steps, answered once durable (wait: false), steps run in the background',
    requests: 1,
    viaCoordinator: saga(false),
    direct: directSaga,
  },
  'saga-wait': {
    name: 'saga-wait',
    description: 'saga of two steps, wait: true (answered when committed)',
    requests: 1,
    viaCoordinator: saga(true),
    direct: directSaga,
  },
  tcc: {
    name: 'tcc',
    description: 'one-shot tcc of two branches, wait: false (answered at the decision; confirm in the background)',
    requests: 1,
    viaCoordinator: oneShot('tcc'),
    direct: (gid, i, parts) => directTwoPhase(gid, i, parts, 'tcc'),
  },
  'tcc-interactive': {
    name: 'tcc-interactive',
    description: 'interactive tcc: begin, add branch a, add branch b, commit (four requests)',
    requests: 4,
    viaCoordinator: interactive('tcc'),
    direct: (gid, i, parts) => directTwoPhase(gid, i, parts, 'tcc'),
  },
  '2pc-interactive': {
    name: '2pc-interactive',
    description: 'interactive 2pc: begin, add branch a, add branch b, commit (four requests)',
    requests: 4,
    viaCoordinator: interactive('2pc'),
    direct: (gid, i, parts) => directTwoPhase(gid, i, parts, '2pc'),
  },
  at: {
    name: 'at',
    description: "one-shot 2pc of two branches on the banks' AT actions (undo log and row locks by triggers), wait: false",
    requests: 1,
    viaCoordinator: oneShot('2pc', 'at'),
    direct: (gid, i, parts) => directTwoPhase(gid, i, { ...parts, a: { ...parts.a, action: parts.a.atAction }, b: { ...parts.b, action: parts.b.atAction } }, '2pc'),
  },
  msg: {
    name: 'msg',
    description: 'a message of two branches: begin (prepared), then submit (commit, wait: false); execute in the background',
    requests: 2,
    usesMsg: true,
    viaCoordinator: message(false),
    direct: directMsg,
  },
  'msg-submit': {
    name: 'msg-submit',
    description: 'a message of two branches submitted at begin ("submit": true, wait: false): a durable fan-out',
    requests: 1,
    usesMsg: true,
    viaCoordinator: message(true),
    direct: directMsg,
  },
  workflow: {
    name: 'workflow',
    description: 'a workflow of two tcc steps: begin, step a, step b, commit (four requests; confirm in the background)',
    requests: 4,
    usesWorkflow: true,
    viaCoordinator: workflow,
    // The participant calls are one-shot tcc's: the ratio to tcc is what recording steps one by one costs.
    direct: (gid, i, parts) => directTwoPhase(gid, i, parts, 'tcc'),
  },
  xa: {
    name: 'xa',
    description: "one-shot 2pc of two branches on the banks' XA actions (Postgres prepared transactions), wait: false",
    requests: 1,
    viaCoordinator: oneShot('2pc'),
    direct: (gid, i, parts) => directTwoPhase(gid, i, parts, '2pc'),
  },
};
