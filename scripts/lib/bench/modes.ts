/**
 * What one transaction of each bench mode is: the client requests to the coordinator, and the
 * "direct" baseline, the same participant calls the coordinator makes for that mode, made by the
 * bench client itself (PROTOCOL.md 5.1 bodies). Each returns whether the transaction succeeded:
 * an error status, a network error, or a transaction seen rolling back all count as failures.
 */
import type { ModeName } from './options.js';
import { postJson, type HttpAnswer } from './http-client.js';
import type { BenchParticipants, BenchSide } from './participants.js';

export interface ModeSpec {
  name: ModeName;
  description: string;
  /** Client requests per transaction. */
  requests: number;
  viaCoordinator(coordinatorUrl: string, gid: string, parts: BenchParticipants): Promise<boolean>;
  direct(gid: string, parts: BenchParticipants): Promise<boolean>;
}

const ok = (answer: HttpAnswer): boolean => answer.status >= 200 && answer.status < 300;
const statusOf = (answer: HttpAnswer): string | null => {
  const body = answer.body as { status?: unknown } | null;
  return body && typeof body.status === 'string' ? body.status : null;
};
const decidedCommit = (answer: HttpAnswer): boolean => ok(answer) && statusOf(answer) !== 'rolling_back' && statusOf(answer) !== 'rolled_back';

/** One participant call as the coordinator makes it (PROTOCOL.md 5.1). */
function call(side: BenchSide, gid: string, branchId: string, mode: string, phase: string): Promise<HttpAnswer> {
  return postJson(
    `${side.endpoint}/${side.action}/${phase}`,
    { gid, branchId, mode, action: side.action, phase, payload: side.payload },
    { 'x-tx-gid': gid, 'x-tx-branch-id': branchId },
  );
}

async function directSaga(gid: string, parts: BenchParticipants): Promise<boolean> {
  if (!ok(await call(parts.a, gid, 's1', 'saga', 'execute'))) return false;
  return ok(await call(parts.b, gid, 's2', 'saga', 'execute'));
}

/** Phase 1 on both in parallel, then phase 2 on both in parallel. */
async function directTwoPhase(gid: string, parts: BenchParticipants, mode: 'tcc' | '2pc'): Promise<boolean> {
  const [first, second] = mode === 'tcc' ? ['try', 'confirm'] : ['prepare', 'commit'];
  const phase1 = await Promise.all([call(parts.a, gid, 'a', mode, first), call(parts.b, gid, 'b', mode, first)]);
  if (!phase1.every(ok)) return false;
  const phase2 = await Promise.all([call(parts.a, gid, 'a', mode, second), call(parts.b, gid, 'b', mode, second)]);
  return phase2.every(ok);
}

const branch = (side: BenchSide, branchId: string) => ({ branchId, participant: side.participant, action: side.action, payload: side.payload });

function saga(wait: boolean) {
  return async (url: string, gid: string, parts: BenchParticipants): Promise<boolean> => {
    const answer = await postJson(`${url}/v1/transactions`, {
      mode: 'saga',
      gid,
      wait,
      steps: [
        { name: 's1', participant: parts.a.participant, action: parts.a.action, payload: parts.a.payload },
        { name: 's2', participant: parts.b.participant, action: parts.b.action, payload: parts.b.payload },
      ],
    });
    return wait ? ok(answer) && statusOf(answer) === 'committed' : decidedCommit(answer);
  };
}

function oneShot(mode: 'tcc' | '2pc') {
  return async (url: string, gid: string, parts: BenchParticipants): Promise<boolean> =>
    decidedCommit(await postJson(`${url}/v1/transactions`, { mode, gid, wait: false, branches: [branch(parts.a, 'a'), branch(parts.b, 'b')] }));
}

/** Begin, add branch a, add branch b, commit: four requests, all to the same instance. */
function interactive(mode: 'tcc' | '2pc') {
  return async (url: string, gid: string, parts: BenchParticipants): Promise<boolean> => {
    if (!ok(await postJson(`${url}/v1/transactions`, { mode, gid }))) return false;
    const tx = `${url}/v1/transactions/${gid}`;
    const done =
      ok(await postJson(`${tx}/branches`, branch(parts.a, 'a'))) &&
      ok(await postJson(`${tx}/branches`, branch(parts.b, 'b'))) &&
      decidedCommit(await postJson(`${tx}/commit`, { wait: false }));
    // Leave nothing active behind a failure (the run drains until every transaction is terminal).
    if (!done) await postJson(`${tx}/rollback`, {}).catch(() => undefined);
    return done;
  };
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
    direct: (gid, parts) => directTwoPhase(gid, parts, 'tcc'),
  },
  'tcc-interactive': {
    name: 'tcc-interactive',
    description: 'interactive tcc: begin, add branch a, add branch b, commit (four requests)',
    requests: 4,
    viaCoordinator: interactive('tcc'),
    direct: (gid, parts) => directTwoPhase(gid, parts, 'tcc'),
  },
  '2pc-interactive': {
    name: '2pc-interactive',
    description: 'interactive 2pc: begin, add branch a, add branch b, commit (four requests)',
    requests: 4,
    viaCoordinator: interactive('2pc'),
    direct: (gid, parts) => directTwoPhase(gid, parts, '2pc'),
  },
  xa: {
    name: 'xa',
    description: "one-shot 2pc of two branches on the banks' XA actions (Postgres prepared transactions), wait: false",
    requests: 1,
    viaCoordinator: oneShot('2pc'),
    direct: (gid, parts) => directTwoPhase(gid, parts, '2pc'),
  },
};
