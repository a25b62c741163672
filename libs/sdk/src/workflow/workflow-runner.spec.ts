import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Json, JsonObject, PhaseCallBody } from '@nest-dtx/protocol';
import { CoordinatorError } from '../client/coordinator-error.js';
import type { WorkflowContext } from './workflow-context.js';
import type {
  DecisionAnswer,
  StepAnswer,
  StepRecordRequest,
  WorkflowBeginRequest,
  WorkflowCoordinator,
  WorkflowStepView,
  WorkflowView,
} from './workflow-coordinator.js';
import { WorkflowClient } from './workflow-client.js';
import {
  StepMismatchError,
  WorkflowDefinitionError,
  WorkflowInterruptedError,
  WorkflowRolledBackError,
  WorkflowStepFailedError,
  WorkflowStepUnknownError,
} from './workflow-errors.js';
import { WorkflowRunner, type WorkflowOutcome } from './workflow-runner.js';
import { WorkflowRegistry } from './workflow.registry.js';

/** What a participant's phase 1 answers in the fake: a result, a refusal, long-running (202), or nothing in time. */
type PhaseOneAnswer = { ok: Json } | { refused: Json } | 'long-running' | 'no-answer';

/**
 * The coordinator's side of PROTOCOL.md 3.7 in memory: it records steps, "calls" participants
 * (a function per participant/action), answers as 3.2/3.6 say, and decides as 3.3 says.
 * `requests` lists what the host asked of it; `phaseOneCalls` the participant calls it made.
 */
class MemoryCoordinator implements WorkflowCoordinator {
  readonly requests: string[] = [];
  readonly phaseOneCalls: string[] = [];
  readonly participants = new Map<string, (payload: JsonObject) => PhaseOneAnswer>();
  readonly transactions = new Map<string, { begin: WorkflowBeginRequest; view: WorkflowView; longRunning: Set<string> }>();
  /** The next commit's request fails as if the coordinator could not be reached (a crash of the host, as far as the workflow goes). */
  failNextCommit = false;
  /** The request of the step of that id fails the same way, once. */
  failStepOnce: string | null = null;
  /** The next read shows no steps: another run recorded them after this one read the transaction. */
  staleNextRead = false;

  on(participantAction: string, answer: (payload: JsonObject) => PhaseOneAnswer): this {
    this.participants.set(participantAction, answer);
    return this;
  }

  begin(request: WorkflowBeginRequest): Promise<{ created: boolean; view: WorkflowView }> {
    this.requests.push('begin');
    const existing = this.transactions.get(request.gid);
    if (existing) return Promise.resolve({ created: false, view: structuredClone(existing.view) });
    const view: WorkflowView = { gid: request.gid, mode: 'workflow', status: 'active', reason: null, input: request.input, result: null, branches: [] };
    this.transactions.set(request.gid, { begin: request, view, longRunning: new Set() });
    return Promise.resolve({ created: true, view: structuredClone(view) });
  }

  recordStep(gid: string, step: StepRecordRequest): Promise<StepAnswer> {
    this.requests.push(`step ${step.stepId}`);
    if (this.failStepOnce === step.stepId) {
      this.failStepOnce = null;
      return Promise.reject(new CoordinatorError(0, null, 'coordinator unreachable'));
    }
    const tx = this.tx(gid);
    if (tx.view.status !== 'active') return Promise.resolve({ kind: 'not_active', message: 'TX_NOT_ACTIVE' });
    const participant = step.kind === 'local' ? null : step.participant;
    const action = step.kind === 'local' ? null : step.action;
    const existing = tx.view.branches.find((branch) => branch.branchId === step.stepId);
    if (existing) {
      if (existing.kind !== step.kind || existing.participant !== participant || existing.action !== action) {
        return Promise.resolve({ kind: 'mismatch', message: `step ${step.stepId} was recorded as ${existing.kind}` });
      }
      return Promise.resolve(this.answerOf(tx.longRunning, existing));
    }
    const branch: WorkflowStepView = { branchId: step.stepId, kind: step.kind, participant, action, status: 'prepared', result: null, lastError: null };
    tx.view.branches.push(branch);
    if (step.kind === 'local') {
      branch.result = step.result;
      return Promise.resolve({ kind: 'recorded', status: 'prepared', result: step.result });
    }
    this.phaseOneCalls.push(`${step.participant}/${step.action}`);
    const answer = this.participants.get(`${step.participant}/${step.action}`)?.(step.payload) ?? { ok: null };
    if (answer === 'long-running') tx.longRunning.add(step.stepId);
    if (answer === 'long-running' || answer === 'no-answer') branch.status = 'pending';
    else if ('ok' in answer) branch.result = answer.ok;
    else {
      branch.status = 'failed';
      branch.lastError = answer.refused;
    }
    return Promise.resolve(this.answerOf(tx.longRunning, branch));
  }

  /** The participant's final answer to a long-running step, as its outcome report would give it (3.6). */
  settle(gid: string, stepId: string, answer: { ok: Json } | { refused: Json }): void {
    const branch = this.tx(gid).view.branches.find((candidate) => candidate.branchId === stepId)!;
    if ('ok' in answer) Object.assign(branch, { status: 'prepared', result: answer.ok });
    else Object.assign(branch, { status: 'failed', lastError: answer.refused });
    this.tx(gid).longRunning.delete(stepId);
  }

  get(gid: string): Promise<WorkflowView> {
    this.requests.push('get');
    const view = structuredClone(this.tx(gid).view);
    if (this.staleNextRead) {
      this.staleNextRead = false;
      view.branches = [];
    }
    return Promise.resolve(view);
  }

  commit(gid: string, result: Json | undefined): Promise<DecisionAnswer> {
    this.requests.push('commit');
    if (this.failNextCommit) {
      this.failNextCommit = false;
      return Promise.reject(new CoordinatorError(0, null, 'coordinator unreachable'));
    }
    const { view } = this.tx(gid);
    if (view.status === 'rolled_back') return Promise.resolve({ kind: 'refused', code: 'TX_ALREADY_DECIDED', message: 'rolled back' });
    if (view.status === 'committed') return Promise.resolve({ kind: 'accepted', status: 'committed' });
    // 3.7 as 3.3: a tcc/2pc step not prepared, or a saga step that did not execute, rolls back instead.
    if (view.branches.some((branch) => branch.kind !== 'local' && branch.status !== 'prepared')) {
      Object.assign(view, { status: 'rolled_back', reason: 'branch_failed' });
      return Promise.resolve({ kind: 'refused', code: 'CANNOT_COMMIT', message: 'a step is failed or pending' });
    }
    Object.assign(view, { status: 'committed', result: result ?? null });
    return Promise.resolve({ kind: 'accepted', status: 'committed' });
  }

  rollback(gid: string): Promise<DecisionAnswer> {
    this.requests.push('rollback');
    const { view } = this.tx(gid);
    if (view.status === 'committed') return Promise.resolve({ kind: 'refused', code: 'TX_ALREADY_DECIDED', message: 'committed' });
    if (view.status === 'active') Object.assign(view, { status: 'rolled_back', reason: 'client' });
    return Promise.resolve({ kind: 'accepted', status: 'rolled_back' });
  }

  /** The ids, kinds and participants of the recorded steps, in recorded order. */
  steps(gid: string): string[] {
    return this.tx(gid).view.branches.map((b) => `${b.branchId}:${b.kind}${b.participant ? ` ${b.participant}/${b.action}` : ''}`);
  }

  tx(gid: string) {
    const tx = this.transactions.get(gid);
    if (!tx) throw new CoordinatorError(404, { statusCode: 404, error: 'TX_NOT_FOUND', message: `no transaction ${gid}` });
    return tx;
  }

  private answerOf(longRunning: Set<string>, branch: WorkflowStepView): StepAnswer {
    if (branch.status === 'failed') return { kind: 'failed', lastError: branch.lastError };
    if (branch.status === 'pending') return longRunning.has(branch.branchId) ? { kind: 'ongoing', retryAfterMs: null } : { kind: 'unknown', lastError: 'no answer within 5000 ms' };
    return { kind: 'recorded', status: branch.status, result: branch.result };
  }
}

type Input = { orderId: string; amount: number };
type WorkflowFunction = (wf: WorkflowContext<Input>) => Promise<unknown>;

const FAST = { stepPollFirstDelayMs: 5, stepPollMaxDelayMs: 20, resumeAnswerWaitMs: 30 };

/** A host with one workflow, `placeOrder`, whose body each test gives (and may change between runs, to play a new deployment). */
function host(coordinator = new MemoryCoordinator()) {
  const registry = new WorkflowRegistry();
  const state: { body: WorkflowFunction; invocations: number } = { body: () => Promise.resolve(null), invocations: 0 };
  registry.add({
    name: 'placeOrder',
    declaredAt: 'OrderWorkflows.placeOrder',
    run: (wf) => {
      state.invocations += 1;
      return state.body(wf as unknown as WorkflowContext<Input>);
    },
  });
  const runner = new WorkflowRunner(coordinator, registry, FAST);
  const client = new WorkflowClient(coordinator, runner, registry, { name: 'orders', coordinatorUrl: 'http://127.0.0.1:1' });
  return { coordinator, registry, runner, client, state };
}

const input: Input = { orderId: 'o-1', amount: 30 };

const resumeCall = (gid: string, payload: Json = input): PhaseCallBody => ({ gid, branchId: 'resume', mode: 'workflow', action: 'placeOrder', phase: 'resume', payload });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('WorkflowRunner: step ids and recording', () => {
  it('records each step under its place in call order, and commits with what the function returned', async () => {
    const { coordinator, client, state } = host();
    coordinator.on('inventory/reserve', () => ({ ok: { reserved: 1 } })).on('shipping/ship', (payload) => ({ ok: { shipped: payload.orderId } }));
    state.body = async (wf) => {
      const stock = await wf.tcc<{ reserved: number }>('inventory', 'reserve', { sku: 'x', qty: 1 });
      const n = await wf.local(() => 7);
      const shipped = await wf.saga('shipping', 'ship', { orderId: wf.input.orderId });
      return { stock, n, shipped };
    };

    const result = await client.run('placeOrder', input, { gid: 'ids-1', timeoutMs: 60_000 });

    expect(result).toEqual({ stock: { reserved: 1 }, n: 7, shipped: { shipped: 'o-1' } });
    expect(coordinator.steps('ids-1')).toEqual(['1:tcc inventory/reserve', '2:local', '3:saga shipping/ship']);
    expect(coordinator.requests).toEqual(['begin', 'get', 'step 1', 'step 2', 'step 3', 'commit']);
    expect(coordinator.tx('ids-1').begin).toEqual({ gid: 'ids-1', timeoutMs: 60_000, workflow: { participant: 'orders', name: 'placeOrder' }, input });
    expect(coordinator.tx('ids-1').view).toMatchObject({ status: 'committed', result: { n: 7 } });
  });

  it('uses a given stepId; every step call takes its place in call order, given an id or not', async () => {
    const { coordinator, client, state } = host();
    state.body = async (wf) => {
      await wf.tcc('inventory', 'reserve', {}, { stepId: 'reserve' });
      await wf.local(() => 1, { stepId: 'pick-number', compensate: { participant: 'audit', action: 'forget', payload: { n: 1 } } });
      await wf.twoPhase('ledger', 'post');
      await wf.xa('ledger', 'post-xa');
      return null;
    };
    await client.run('placeOrder', input, { gid: 'ids-2' });
    expect(coordinator.steps('ids-2')).toEqual(['reserve:tcc inventory/reserve', 'pick-number:local', '3:2pc ledger/post', '4:2pc ledger/post-xa']);
  });

  it('gives steps started together (Promise.all) their ids in call order, whatever order they are recorded in', async () => {
    const { coordinator, client, state } = host();
    coordinator.on('a/x', () => ({ ok: 'a' })).on('b/y', () => ({ ok: 'b' }));
    state.body = async (wf) => Promise.all([wf.saga('a', 'x'), wf.local(() => Promise.resolve('c')), wf.saga('b', 'y')]);
    expect(await client.run('placeOrder', input, { gid: 'ids-3' })).toEqual(['a', 'c', 'b']);
    expect(coordinator.steps('ids-3').sort()).toEqual(['1:saga a/x', '2:local', '3:saga b/y']);
  });

  it('refuses a step id that is not an id, or one used twice in a run, as a mistake of the code: the workflow rolls back', async () => {
    const { coordinator, client, state } = host();
    state.body = async (wf) => {
      await wf.local(() => 1, { stepId: 'two' });
      await wf.local(() => 2, { stepId: 'two' });
    };
    const error = await client.run('placeOrder', input, { gid: 'ids-4' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowRolledBackError);
    expect((error as WorkflowRolledBackError).cause).toBeInstanceOf(WorkflowDefinitionError);
    expect(coordinator.requests.slice(-1)).toEqual(['rollback']);

    state.body = (wf) => wf.local(() => 1, { stepId: 'not an id' });
    const second = await client.run('placeOrder', input, { gid: 'ids-5' }).catch((e: unknown) => e);
    expect(((second as WorkflowRolledBackError).cause as Error).message).toContain('step id "not an id" is not');
  });
});

describe('WorkflowRunner: replay', () => {
  it('answers recorded steps from the record on a re-run: nobody is called again, local code does not run again, only new steps are sent', async () => {
    const { coordinator, client, runner, state } = host();
    coordinator.on('inventory/reserve', () => ({ ok: { reserved: 1 } })).on('shipping/ship', () => ({ ok: { tracking: 't-1' } }));
    let localRuns = 0;
    const seen: unknown[] = [];
    state.body = async (wf) => {
      const stock = await wf.tcc('inventory', 'reserve', { sku: 'x' });
      const picked = await wf.local(() => {
        localRuns += 1;
        return { at: new Date(Date.UTC(2026, 0, 1)), random: 0.25, dropped: undefined };
      });
      seen.push(picked);
      const shipping = await wf.saga('shipping', 'ship', { stock });
      return { picked, shipping };
    };
    // The first run records steps 1 and 2, then loses the coordinator while step 3 is being recorded.
    coordinator.failStepOnce = '3';
    const gid = await client.start('placeOrder', input, { gid: 'replay-1' });
    const first = await runner.run(gid, 'placeOrder');
    expect(first.status).toBe('interrupted');
    expect(coordinator.steps(gid)).toEqual(['1:tcc inventory/reserve', '2:local']);
    expect(coordinator.tx(gid).view.status).toBe('active');

    // The coordinator resumes it: steps 1 and 2 come from the record, step 3 is sent, then the commit.
    coordinator.requests.length = 0;
    const answer = await runner.answerResume(resumeCall(gid));
    expect(answer).toEqual({ kind: 'ok', result: { status: 'committed', result: { picked: { at: '2026-01-01T00:00:00.000Z', random: 0.25 }, shipping: { tracking: 't-1' } } } });
    expect(coordinator.requests).toEqual(['get', 'step 3', 'commit']);
    expect(coordinator.phaseOneCalls).toEqual(['inventory/reserve', 'shipping/ship']);
    expect(localRuns).toBe(1);
    // Both runs saw the same value: the first one got it as JSON brings it back too.
    expect(seen[0]).toEqual(seen[1]);
    expect(state.invocations).toBe(2);
  });

  it('re-runs after a crash before the commit: every step replays, and the commit is sent again', async () => {
    const { coordinator, client, runner, state } = host();
    let localRuns = 0;
    state.body = async (wf) => {
      await wf.tcc('inventory', 'reserve');
      return { n: await wf.local(() => ++localRuns) };
    };
    coordinator.failNextCommit = true;
    const error = await client.run('placeOrder', input, { gid: 'replay-2' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowInterruptedError);

    coordinator.requests.length = 0;
    const outcome = await runner.run('replay-2', 'placeOrder');
    expect(outcome).toEqual({ gid: 'replay-2', status: 'committed', result: { n: 1 } });
    expect(coordinator.requests).toEqual(['get', 'commit']);
    expect(coordinator.phaseOneCalls).toEqual(['inventory/reserve']);
  });

  it('throws a recorded failed step again from the record, without calling its participant', async () => {
    const { coordinator, client, runner, state } = host();
    coordinator.on('inventory/reserve', () => ({ refused: { error: 'BUSINESS_FAILURE', message: 'out of stock' } }));
    const caught: unknown[] = [];
    state.body = async (wf) => {
      try {
        await wf.tcc('inventory', 'reserve');
      } catch (error) {
        caught.push(error);
      }
      return 'done';
    };
    coordinator.failNextCommit = true;
    await client.start('placeOrder', input, { gid: 'replay-3' });
    await vi.waitFor(() => expect(coordinator.requests).toContain('commit'));
    await vi.waitFor(() => expect(runner.isRunning('replay-3')).toBe(false));
    coordinator.requests.length = 0;
    // (The commit is refused, CANNOT_COMMIT, since the tcc step failed: the last read is for the reason.)
    expect((await runner.run('replay-3', 'placeOrder')).status).toBe('rolled_back');
    expect(coordinator.requests).toEqual(['get', 'commit', 'get']);
    expect(coordinator.phaseOneCalls).toEqual(['inventory/reserve']);
    expect(caught).toHaveLength(2);
    expect((caught[1] as WorkflowStepFailedError).details).toEqual({ error: 'BUSINESS_FAILURE', message: 'out of stock' });
  });

  it('does not run a decided workflow again: a begin answered 200 for it resolves with its recorded result', async () => {
    const { client, state } = host();
    state.body = () => Promise.resolve({ total: 30 });
    expect(await client.run('placeOrder', input, { gid: 'replay-4' })).toEqual({ total: 30 });
    expect(await client.run('placeOrder', input, { gid: 'replay-4' })).toEqual({ total: 30 });
    expect(state.invocations).toBe(1);
  });
});

describe('WorkflowRunner: a replay that goes another way (STEP_MISMATCH)', () => {
  /** A workflow recorded by a first run as tcc inventory/reserve then local, left active by a crash before the commit. */
  async function recordedThenCrashed(gid: string) {
    const env = host();
    env.state.body = async (wf) => {
      await wf.tcc('inventory', 'reserve');
      await wf.local(() => 1);
      return null;
    };
    env.coordinator.failNextCommit = true;
    await env.client.run('placeOrder', input, { gid }).catch(() => undefined);
    env.coordinator.requests.length = 0;
    return env;
  }

  it('is found in the record before anything is sent, ends the run without a decision even if the function catches it, and is logged as an error', async () => {
    const { coordinator, runner, state } = await recordedThenCrashed('mismatch-1');
    const errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const caught: unknown[] = [];
    state.body = async (wf) => {
      try {
        await wf.saga('shipping', 'ship');
      } catch (error) {
        caught.push(error);
      }
      // Every later step throws it again; the return is ignored.
      await wf.local(() => 2).catch((error: unknown) => caught.push(error));
      return 'as if nothing happened';
    };
    const outcome = await runner.run('mismatch-1', 'placeOrder');
    expect(outcome.status).toBe('interrupted');
    const error = (outcome as Extract<WorkflowOutcome, { status: 'interrupted' }>).error;
    expect(error).toBeInstanceOf(StepMismatchError);
    expect(error.message).toContain('step 1 is recorded as tcc inventory/reserve, this run asked for saga shipping/ship');
    expect(caught).toEqual([error, error]);
    expect(coordinator.requests).toEqual(['get']);
    expect(coordinator.tx('mismatch-1').view.status).toBe('active');
    expect(errors.mock.calls.map(([line]) => String(line)).join('\n')).toMatch(/mismatch-1.*not deterministic.*rolls it back at its deadline/);
  });

  it('is answered 409 STEP_MISMATCH by the coordinator when the record read before the run did not have the step yet', async () => {
    const { coordinator, runner, state } = await recordedThenCrashed('mismatch-2');
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    state.body = async (wf) => wf.saga('shipping', 'ship');
    coordinator.staleNextRead = true;
    const outcome = await runner.run('mismatch-2', 'placeOrder');
    expect((outcome as Extract<WorkflowOutcome, { status: 'interrupted' }>).error).toBeInstanceOf(StepMismatchError);
    expect(coordinator.requests).toEqual(['get', 'step 1']);
    expect(coordinator.phaseOneCalls).toEqual(['inventory/reserve']);
  });

  it('is found when a run returns without asking for a step an earlier run recorded', async () => {
    const { coordinator, runner, state } = await recordedThenCrashed('mismatch-3');
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    state.body = async (wf) => {
      await wf.tcc('inventory', 'reserve');
      return null;
    };
    const outcome = await runner.run('mismatch-3', 'placeOrder');
    expect((outcome as Extract<WorkflowOutcome, { status: 'interrupted' }>).error.message).toContain('without asking for recorded step(s) 2 (local)');
    expect(coordinator.requests).toEqual(['get']);
  });

  it('is answered 409 to a resume (the coordinator retries it and flags the workflow for attention)', async () => {
    const { runner, state } = await recordedThenCrashed('mismatch-4');
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    state.body = async (wf) => wf.saga('shipping', 'ship');
    expect(await runner.answerResume(resumeCall('mismatch-4'))).toMatchObject({ kind: 'failed', details: { reason: 'step_mismatch' } });
  });
});

describe('WorkflowRunner: step outcomes and decisions', () => {
  it('lets the function catch a failed step and decide: it commits, and the coordinator rolls back a commit with a failed tcc step (CANNOT_COMMIT)', async () => {
    const { coordinator, client, state } = host();
    coordinator.on('inventory/reserve', () => ({ refused: { message: 'out of stock' } })).on('backorder/place', () => ({ ok: { eta: 3 } }));
    state.body = async (wf) => {
      try {
        await wf.tcc('inventory', 'reserve');
      } catch (error) {
        if (!(error instanceof WorkflowStepFailedError)) throw error;
        expect(error.step).toEqual({ stepId: '1', kind: 'tcc', participant: 'inventory', action: 'reserve' });
        return wf.saga('backorder', 'place', { orderId: wf.input.orderId });
      }
      return null;
    };
    const error = await client.run('placeOrder', input, { gid: 'failed-1' }).catch((e: unknown) => e);
    expect(coordinator.requests).toEqual(['begin', 'get', 'step 1', 'step 2', 'commit', 'get']);
    expect(error).toBeInstanceOf(WorkflowRolledBackError);
    expect(error).toMatchObject({ gid: 'failed-1', reason: 'branch_failed' });
    expect((error as Error).message).toContain('CANNOT_COMMIT');
  });

  it('rolls back when the function throws, and run() rejects with WorkflowRolledBackError carrying what it threw', async () => {
    const { coordinator, client, state } = host();
    const thrown = new Error('payment declined');
    state.body = async (wf) => {
      await wf.tcc('inventory', 'reserve');
      throw thrown;
    };
    const error = await client.run('placeOrder', input, { gid: 'throw-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowRolledBackError);
    expect(error).toMatchObject({ reason: 'client', cause: thrown });
    expect(coordinator.requests.slice(-1)).toEqual(['rollback']);
    expect(coordinator.tx('throw-1').view.status).toBe('rolled_back');
  });

  it('throws WorkflowStepUnknownError for a step without an answer in time (502 BRANCH_UNKNOWN); uncaught, it rolls back', async () => {
    const { coordinator, client, state } = host();
    coordinator.on('inventory/reserve', () => 'no-answer');
    let seen: unknown;
    state.body = async (wf) => {
      await wf.tcc('inventory', 'reserve').catch((error: unknown) => {
        seen = error;
        throw error;
      });
    };
    const error = await client.run('placeOrder', input, { gid: 'unknown-1' }).catch((e: unknown) => e);
    expect(seen).toBeInstanceOf(WorkflowStepUnknownError);
    expect((seen as WorkflowStepUnknownError).lastError).toBe('no answer within 5000 ms');
    expect((error as WorkflowRolledBackError).cause).toBe(seen);
  });

  it('waits for a long-running step (202) by reading the transaction until the step is prepared', async () => {
    const { coordinator, client, state } = host();
    coordinator.on('approvals/approve', () => 'long-running');
    state.body = async (wf) => ({ approval: await wf.tcc('approvals', 'approve', { orderId: wf.input.orderId }) });
    const running = client.run('placeOrder', input, { gid: 'ongoing-1' });
    await vi.waitFor(() => expect(coordinator.requests.filter((r) => r === 'get').length).toBeGreaterThanOrEqual(3));
    expect(coordinator.requests).not.toContain('commit');
    coordinator.settle('ongoing-1', '1', { ok: { approvedBy: 'ann' } });
    expect(await running).toEqual({ approval: { approvedBy: 'ann' } });
    expect(coordinator.phaseOneCalls).toEqual(['approvals/approve']);
  });

  it('throws WorkflowStepFailedError when a long-running step ends refused', async () => {
    const { coordinator, client, state } = host();
    coordinator.on('approvals/approve', () => 'long-running');
    state.body = async (wf) => wf.tcc('approvals', 'approve').catch((error: unknown) => ({ refused: (error as WorkflowStepFailedError).details }));
    const running = client.run('placeOrder', input, { gid: 'ongoing-2' });
    await vi.waitFor(() => expect(coordinator.requests).toContain('get'));
    coordinator.settle('ongoing-2', '1', { refused: { message: 'not approved' } });
    // The function returned, so the host commits; the coordinator rolls back (the step is failed).
    await expect(running).rejects.toBeInstanceOf(WorkflowRolledBackError);
  });

  it('ends the run as decided when the workflow was rolled back meanwhile (a step answered TX_NOT_ACTIVE)', async () => {
    const { coordinator, client, state } = host();
    state.body = async (wf) => {
      await wf.local(() => {
        // The deadline passes while the local code runs.
        Object.assign(coordinator.tx(wf.gid).view, { status: 'rolled_back', reason: 'timeout' });
        return 1;
      });
      return 'never committed';
    };
    const error = await client.run('placeOrder', input, { gid: 'deadline-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowRolledBackError);
    expect(error).toMatchObject({ reason: 'timeout' });
    expect(coordinator.requests).not.toContain('commit');
    expect(coordinator.requests).not.toContain('rollback');
  });
});

describe('WorkflowRunner: resume', () => {
  it('is one run per gid: resumes and a start of a gid that is running join it; 202 while it runs, 2xx once it decided', async () => {
    const { coordinator, client, runner, state } = host();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    state.body = async (wf) => {
      await wf.local(async () => {
        await gate;
        return 'approved';
      });
      return { orderId: wf.input.orderId };
    };
    const gid = await client.start('placeOrder', input, { gid: 'resume-1' });
    const answers = await Promise.all([runner.answerResume(resumeCall(gid)), runner.answerResume(resumeCall(gid)), client.start('placeOrder', input, { gid })]);
    expect(answers).toEqual([{ kind: 'ongoing' }, { kind: 'ongoing' }, gid]);
    expect(runner.isRunning(gid)).toBe(true);
    expect(state.invocations).toBe(1);

    release();
    await vi.waitFor(() => expect(runner.isRunning(gid)).toBe(false));
    expect(await runner.answerResume(resumeCall(gid))).toEqual({ kind: 'ok', result: { status: 'committed', result: { orderId: 'o-1' } } });
    expect(state.invocations).toBe(1);
    expect(coordinator.requests.filter((r) => r === 'commit')).toHaveLength(1);
  });

  it('runs a workflow it did not start (another process began it) with the input the transaction shows', async () => {
    const { coordinator, runner, state } = host();
    await coordinator.begin({ gid: 'resume-2', workflow: { participant: 'orders', name: 'placeOrder' }, input: { orderId: 'from-the-record', amount: 1 } });
    state.body = (wf) => Promise.resolve(wf.input.orderId);
    expect(await runner.answerResume(resumeCall('resume-2', { orderId: 'from-the-payload', amount: 1 }))).toEqual({
      kind: 'ok',
      result: { status: 'committed', result: 'from-the-record' },
    });
  });

  it('answers 2xx for a workflow that was rolled back, and refuses a workflow it does not host or a phase other than resume', async () => {
    const { client, runner, state } = host();
    state.body = () => Promise.reject(new Error('no'));
    await client.run('placeOrder', input, { gid: 'resume-3' }).catch(() => undefined);
    expect(await runner.answerResume(resumeCall('resume-3'))).toEqual({ kind: 'ok', result: { status: 'rolled_back', reason: 'client' } });
    expect(await runner.answerResume({ ...resumeCall('resume-3'), action: 'cancelOrder' })).toEqual({ kind: 'invalid', message: 'no workflow cancelOrder is hosted here' });
    expect(await runner.answerResume({ ...resumeCall('resume-3'), phase: 'try' })).toMatchObject({ kind: 'invalid' });
  });

  it('refuses to start a workflow this app does not host', async () => {
    const { client, coordinator } = host();
    await expect(client.start('cancelOrder', {})).rejects.toThrow('no workflow cancelOrder is hosted here');
    expect(coordinator.requests).toEqual([]);
  });
});
