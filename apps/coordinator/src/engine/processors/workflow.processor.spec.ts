/**
 * The workflow mode's plug-in (PROTOCOL.md 3.7), without the engine: its begin and what it
 * refuses, its rules as the state machine applies them to steps of mixed kinds, the steps it
 * shapes, and its waves: the resume of a quiet host, commit to every tcc / 2pc step at once,
 * rollback newest step first, a local step by its compensation.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, type CallOutcome, type Mode, type StepKind } from '@nest-dtx/protocol';
import { CoordinatorConfig, loadCoordinatorEnv } from '../../config/coordinator.config.js';
import type { RegisteredParticipant } from '../../participants/participant-signing.js';
import type { ParticipantsService } from '../../participants/participants.service.js';
import { UnresolvedParticipantError } from '../../participants/unresolved-participant.error.js';
import type { BranchRecord, LoadedTx, TxRecord } from '../../store/records.js';
import { InvalidRequestError } from '../errors.js';
import { machineOf } from '../machine.js';
import { transition, type MachineEvent, type MachineTx } from '../state-machine.js';
import { isPostponed, type Wave } from '../wave.js';
import { sameStep, type BeginRequest } from './mode-processor.js';
import { WORKFLOW_RESUME_BRANCH_ID, WorkflowProcessor } from './workflow.processor.js';

/**
 * Registered participants, each action with the modes it takes: `orders` (spelled `Orders`)
 * hosts the workflow `placeOrder`; `bank` has `debit` for tcc and 2pc and `refund` for saga.
 */
const REGISTERED: Record<string, { name: string; actions: Record<string, Mode[]> }> = {
  orders: { name: 'Orders', actions: { placeOrder: ['workflow'] } },
  bank: { name: 'bank', actions: { debit: ['tcc', '2pc'], refund: ['saga'] } },
};
const participants = {
  resolve(name: string, action: string, mode: Mode, prefix: string): Promise<RegisteredParticipant> {
    const field = (key: string) => (prefix ? `${prefix}.${key}` : key);
    const found = REGISTERED[name.toLowerCase()];
    if (!found) return Promise.reject(new UnresolvedParticipantError(ErrorCode.UNKNOWN_PARTICIPANT, field('participant'), `participant ${name} is not registered`));
    if (!found.actions[action]?.includes(mode)) {
      return Promise.reject(new UnresolvedParticipantError(ErrorCode.UNKNOWN_ACTION, field('action'), `participant ${name} has no action ${action} for mode ${mode}`));
    }
    return Promise.resolve({ name: found.name } as unknown as RegisteredParticipant);
  },
} as unknown as ParticipantsService;

const RESUME_MS = 2_500;
const config = new CoordinatorConfig(loadCoordinatorEnv({ INSTANCE_ID: 'workflow-spec', WORKFLOW_RESUME_MS: String(RESUME_MS) }));
const workflow = new WorkflowProcessor(participants, config);

const begin = (over: Partial<BeginRequest> = {}): BeginRequest => ({
  mode: 'workflow', gid: 'g', gidChosen: true, timeoutMs: 10_000, metadata: {}, requestHash: 'h', traceParent: null, ownerKeyDigest: null,
  workflow: { participant: 'orders', name: 'placeOrder' }, input: { orderId: 'o-1' }, ...over,
});

async function refusal(request: BeginRequest): Promise<{ field: string; message: string }> {
  const error: unknown = await workflow.begin(request).then(() => null, (e: unknown) => e);
  if (!(error instanceof InvalidRequestError) && !(error instanceof UnresolvedParticipantError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return { field: error.field, message: error.message };
}

const NOW = new Date();
const TX: TxRecord = {
  gid: 'g', mode: 'workflow', status: 'active', reason: null, oneShot: false, concurrent: false, requestHash: 'h', metadata: {}, timeoutMs: 10_000,
  deadline: new Date(NOW.getTime() + 10_000), version: 1, attempts: 0, needsAttention: false, nextAttemptAt: null, leaseOwner: null, leaseUntil: null,
  traceParent: null, check: null, workflow: { participant: 'Orders', name: 'placeOrder' }, input: { orderId: 'o-1' }, result: null, ownerKeyDigest: null,
  createdAt: NOW, updatedAt: NOW,
};

/** Steps in recorded order (seq), each of its kind. */
function loaded(tx: Partial<TxRecord>, steps: Array<Partial<BranchRecord> & { branchId: string; kind: StepKind }>): LoadedTx {
  return {
    tx: { ...TX, ...tx },
    branches: steps.map((b, i) => ({ gid: 'g', seq: i + 1, participant: 'bank', action: 'debit', payload: {}, dependsOn: [], compensate: null, status: 'pending',
      waitingSince: null, attempts: 0, lastError: null, result: null, createdAt: NOW, updatedAt: NOW, ...b })),
  };
}
/** Each call as `branchId participant/action phase (mode)`. */
const called = (wave: Wave) => wave.calls.map((c) => `${c.target.branchId} ${c.target.participant}/${c.target.action} ${c.phase} (${c.mode ?? 'tx'})`);

/** Applies events to a machine, failing on a refusal. */
function after(machine: MachineTx, ...events: MachineEvent[]): MachineTx {
  let next = machine;
  for (const event of events) {
    const result = transition(next, event);
    if (!result.ok) throw new Error(`${event.type}: ${result.error}`);
    next = result.tx;
  }
  return next;
}

describe('workflow: begin', () => {
  it('active with no branch, its host in its registered spelling, its input kept, looked at after the resume interval', async () => {
    expect(await workflow.begin(begin())).toEqual({
      branches: [], oneShot: false, status: 'active', branchStatus: 'pending',
      workflow: { participant: 'Orders', name: 'placeOrder' }, input: { orderId: 'o-1' }, firstLook: { afterMs: RESUME_MS },
      events: [{ type: 'created', to: 'active', detail: { mode: 'workflow', oneShot: false, timeoutMs: 10_000 } }],
    });
  });

  it('takes an absent input as null', async () => {
    expect((await workflow.begin(begin({ input: undefined }))).input).toBeNull();
  });

  it.each<[string, Partial<BeginRequest>, string, string]>([
    ['no workflow', { workflow: undefined }, 'workflow', 'workflow is required for mode workflow'],
    ['branches', { branches: [{ participant: 'bank', action: 'debit' }] }, 'branches', 'branches is not for mode workflow: its host records its steps one by one (POST /v1/transactions/{gid}/steps)'],
    ['steps', { steps: [{ name: 's1', participant: 'bank', action: 'refund' }] }, 'steps', 'steps is not for mode workflow: its host records its steps one by one (POST /v1/transactions/{gid}/steps)'],
    ['concurrent', { concurrent: false }, 'concurrent', 'concurrent is not for mode workflow: its host records its steps one by one (POST /v1/transactions/{gid}/steps)'],
    ['check', { check: { participant: 'orders', action: 'c' } }, 'check', 'check is only for mode msg'],
    ['submit', { submit: true }, 'submit', 'submit is only for mode msg'],
    ['an unknown host', { workflow: { participant: 'nobody', name: 'placeOrder' } }, 'workflow.participant', 'participant nobody is not registered'],
    ['a name the host did not register with mode workflow', { workflow: { participant: 'bank', name: 'debit' } }, 'workflow.name', 'participant bank has no action debit for mode workflow'],
  ])('refuses %s, naming the field', async (_name, over, field, message) => {
    expect(await refusal(begin(over))).toEqual({ field, message });
  });
});

describe('workflow: rules', () => {
  const machine = (steps: Parameters<typeof loaded>[1], status: TxRecord['status'] = 'active') => machineOf(loaded({ status }, steps), workflow);

  it('records a branch step pending and a local step committed; the same stepId again changes nothing', () => {
    const recorded = after(machine([]), { type: 'step_recorded', branchId: '1', kind: 'tcc' }, { type: 'step_recorded', branchId: '2', kind: 'local' });
    expect(recorded.branches).toEqual([
      { branchId: '1', status: 'pending', kind: 'tcc' },
      { branchId: '2', status: 'committed', kind: 'local' },
    ]);
    expect(transition(recorded, { type: 'step_recorded', branchId: '1', kind: 'tcc' })).toMatchObject({ ok: true, changed: false });
  });

  it('records no step once decided, but answers one recorded before; takes no added branch', () => {
    const decided = machine([{ branchId: '1', kind: 'tcc', status: 'prepared' }], 'committing');
    expect(transition(decided, { type: 'step_recorded', branchId: '2', kind: 'saga' })).toEqual({ ok: false, error: ErrorCode.TX_NOT_ACTIVE });
    expect(transition(decided, { type: 'step_recorded', branchId: '1', kind: 'tcc' })).toMatchObject({ ok: true, changed: false });
    expect(transition(machine([]), { type: 'branch_added', branchId: 'b', kind: null })).toEqual({ ok: false, error: ErrorCode.WRONG_MODE });
  });

  it('a phase-1 success makes a tcc / 2pc step prepared and a saga step committed; a failure decides nothing', () => {
    const steps = [
      { branchId: 't', kind: 'tcc' as const },
      { branchId: 'x', kind: '2pc' as const },
      { branchId: 's', kind: 'saga' as const },
      { branchId: 'f', kind: 'tcc' as const },
    ];
    const answered = after(machine(steps), {
      type: 'phase1_answered',
      answers: [
        { branchId: 't', answer: 'ok' },
        { branchId: 'x', answer: 'ok' },
        { branchId: 's', answer: 'ok' },
        { branchId: 'f', answer: 'failed' },
      ],
    });
    expect(answered.status).toBe('active');
    expect(answered.branches.map((b) => b.status)).toEqual(['prepared', 'prepared', 'committed', 'failed']);
  });

  it('commits only when every tcc / 2pc step is prepared and every saga / local step committed', () => {
    const ready = machine([
      { branchId: '1', kind: 'tcc', status: 'prepared' },
      { branchId: '2', kind: '2pc', status: 'prepared' },
      { branchId: '3', kind: 'saga', status: 'committed' },
      { branchId: '4', kind: 'local', status: 'committed' },
    ]);
    expect(transition(ready, { type: 'commit_requested' })).toMatchObject({ ok: true, tx: { status: 'committing' } });
    expect(transition(machine([]), { type: 'commit_requested' })).toMatchObject({ ok: true, tx: { status: 'committing' } });
  });

  it.each([
    ['a failed step', 'failed'],
    ['a step whose outcome is unknown', 'pending'],
  ] as const)('rolls back instead of committing with %s (branch_failed, CANNOT_COMMIT)', (_name, status) => {
    const one = machine([{ branchId: '1', kind: 'saga', status: 'committed' }, { branchId: '2', kind: 'tcc', status }]);
    expect(transition(one, { type: 'commit_requested' })).toMatchObject({ ok: true, error: ErrorCode.CANNOT_COMMIT, tx: { status: 'rolling_back', reason: 'branch_failed' } });
  });

  it('is decided by its host (client) or an operator, and rolled back at its deadline', () => {
    expect(transition(machine([]), { type: 'rollback_requested', reason: 'client' })).toMatchObject({ ok: true, tx: { status: 'rolling_back', reason: 'client' } });
    expect(transition(machine([]), { type: 'deadline_passed' })).toMatchObject({ ok: true, tx: { status: 'rolling_back', reason: 'timeout' } });
  });
});

describe('workflow: steps', () => {
  it('a branch step on its participant in its registered spelling, of its kind; it puts off the resume', async () => {
    const plan = await workflow.step(TX, { stepId: '1', kind: '2pc', participant: 'BANK', action: 'debit', payload: { amount: 5 } });
    expect(plan).toEqual({ branch: { branchId: '1', participant: 'bank', action: 'debit', payload: { amount: 5 }, kind: '2pc' }, nextLookInMs: RESUME_MS });
  });

  it('a local step is its host\'s own, recorded committed with its result and its compensation', async () => {
    const plan = await workflow.step(TX, { stepId: 'inv', kind: 'local', result: 'INV-1', compensate: { participant: 'Bank', action: 'refund', payload: { amount: 5 } } });
    expect(plan.branch).toEqual({
      branchId: 'inv', participant: 'Orders', action: 'placeOrder', payload: {}, kind: 'local', status: 'committed', result: 'INV-1',
      compensate: { participant: 'bank', action: 'refund', payload: { amount: 5 } },
    });
    expect((await workflow.step(TX, { stepId: 'n', kind: 'local', result: null, compensate: null })).branch).not.toHaveProperty('compensate');
  });

  it.each<[string, Parameters<WorkflowProcessor['step']>[1], string]>([
    ['an action not registered for the step\'s kind', { stepId: '1', kind: 'saga', participant: 'bank', action: 'debit', payload: {} }, 'action'],
    ['an unknown participant', { stepId: '1', kind: 'tcc', participant: 'nobody', action: 'debit', payload: {} }, 'participant'],
    ['a compensation that is no saga action', { stepId: '1', kind: 'local', result: 1, compensate: { participant: 'bank', action: 'debit', payload: {} } }, 'compensate.action'],
  ])('refuses %s, naming the field', async (_name, step, field) => {
    await expect(workflow.step(TX, step)).rejects.toMatchObject({ constructor: UnresolvedParticipantError, field });
  });

  it('tells the same step asked for again from another under its stepId (participant names are case-insensitive)', () => {
    const recorded = { kind: 'tcc' as const, participant: 'bank', action: 'debit' };
    expect(sameStep(recorded, { stepId: '1', kind: 'tcc', participant: 'BANK', action: 'debit', payload: { other: 'payload' } })).toBe(true);
    expect(sameStep(recorded, { stepId: '1', kind: '2pc', participant: 'bank', action: 'debit', payload: {} })).toBe(false);
    expect(sameStep(recorded, { stepId: '1', kind: 'tcc', participant: 'shop', action: 'debit', payload: {} })).toBe(false);
    expect(sameStep(recorded, { stepId: '1', kind: 'tcc', participant: 'bank', action: 'credit', payload: {} })).toBe(false);
    // A local step compares its kind only: its result is the host's, and may differ on a replay.
    expect(sameStep({ kind: 'local', participant: 'Orders', action: 'placeOrder' }, { stepId: '1', kind: 'local', result: 'other', compensate: null })).toBe(true);
    expect(sameStep({ kind: 'local', participant: 'Orders', action: 'placeOrder' }, { stepId: '1', kind: 'saga', participant: 'Orders', action: 'placeOrder', payload: {} })).toBe(false);
  });
});

describe('workflow: waves', () => {
  it('active: asks its host to resume it, with its input, in mode workflow; its answer moves nothing', () => {
    const wave = workflow.nextActive(loaded({}, [{ branchId: '1', kind: 'tcc', status: 'prepared' }]));
    if (!wave || isPostponed(wave)) throw new Error('expected a wave');
    expect(wave.calls).toEqual([
      { target: { branchId: WORKFLOW_RESUME_BRANCH_ID, participant: 'Orders', action: 'placeOrder', payload: { orderId: 'o-1' } }, branch: null, phase: 'resume', mode: 'workflow' },
    ]);
    expect(wave.answered([{ kind: 'ok', result: null }])).toEqual([]);
  });

  it('active with a step waiting for its final answer (3.6): that step asked again, not the host; idle a resume interval once it answered', () => {
    const waiting = loaded({}, [
      { branchId: '1', kind: 'tcc', status: 'prepared' },
      { branchId: '2', kind: '2pc', status: 'pending', waitingSince: NOW },
      { branchId: '3', kind: 'local', status: 'committed', participant: 'Orders', action: 'placeOrder' },
    ]);
    const wave = workflow.nextActive(waiting);
    if (!wave || isPostponed(wave) || !wave.idleAfter) throw new Error('expected a wave of the waiting step');
    expect(called(wave)).toEqual(['2 bank/debit prepare (2pc)']);
    expect(wave.answered([{ kind: 'ok', result: null }])).toEqual([{ type: 'phase1_answered', answers: [{ branchId: '2', answer: 'ok' }] }]);
    expect(wave.idleAfter([{ kind: 'ok', result: null }])).toBe(RESUME_MS);
    // A reported outcome runs through the same wave; once decided, through phase 2's.
    expect(called(workflow.waveOf(waiting, new Set(['2'])))).toEqual(['2 bank/debit prepare (2pc)']);
    expect(called(workflow.waveOf({ ...waiting, tx: { ...waiting.tx, status: 'committing' } }, new Set(['1'])))).toEqual(['1 bank/debit confirm (tcc)']);
  });

  it('a resume answered: asked again after the resume interval, or when the host said (202 with retryAfterMs)', () => {
    const wave = workflow.nextActive(loaded({}, []));
    if (!wave || isPostponed(wave) || !wave.idleAfter) throw new Error('expected a resume wave');
    const answers: Array<[CallOutcome, number]> = [
      [{ kind: 'ok', result: { status: 'committed' } }, RESUME_MS],
      [{ kind: 'ongoing' }, RESUME_MS],
      [{ kind: 'ongoing', retryAfterMs: 700 }, 700],
    ];
    for (const [outcome, ms] of answers) expect(wave.idleAfter([outcome])).toBe(ms);
  });

  it('commit: confirm / commit to every tcc / 2pc step at once, nothing to saga and local steps (committed already)', () => {
    const committing = loaded({ status: 'committing' }, [
      { branchId: '1', kind: 'tcc', status: 'prepared' },
      { branchId: '2', kind: 'saga', status: 'committed' },
      { branchId: '3', kind: 'local', status: 'committed', participant: 'Orders', action: 'placeOrder', compensate: { participant: 'bank', action: 'refund', payload: {} } },
      { branchId: '4', kind: '2pc', status: 'prepared' },
    ]);
    expect(called(workflow.nextDecided(committing))).toEqual(['1 bank/debit confirm (tcc)', '4 bank/debit commit (2pc)']);
  });

  it('rollback: the newest step first, one at a time, a local step by its compensation (a saga action) or by nothing', () => {
    const steps = [
      { branchId: '1', kind: 'tcc' as const, status: 'prepared' as const },
      { branchId: '2', kind: 'local' as const, status: 'committed' as const, participant: 'Orders', action: 'placeOrder', compensate: { participant: 'bank', action: 'refund', payload: { n: 2 } } },
      { branchId: '3', kind: 'saga' as const, status: 'committed' as const, action: 'refund' },
      { branchId: '4', kind: 'local' as const, status: 'committed' as const, participant: 'Orders', action: 'placeOrder' },
      { branchId: '5', kind: '2pc' as const, status: 'failed' as const },
    ];
    const order: string[] = [];
    let current = loaded({ status: 'rolling_back', reason: 'client' }, steps);
    for (let round = 0; round < steps.length; round++) {
      const wave = workflow.nextDecided(current);
      expect(wave.calls).toHaveLength(1);
      order.push(...called(wave));
      // Every call answered 2xx (a step with nothing to call is done as it stands).
      const next = after(machineOf(current, workflow), ...wave.answered(wave.calls.map(() => ({ kind: 'ok', result: null }))));
      current = { ...current, tx: { ...current.tx, status: next.status }, branches: current.branches.map((b) => ({ ...b, status: next.branches.find((n) => n.branchId === b.branchId)!.status })) };
    }
    expect(order).toEqual([
      '5 bank/debit rollback (2pc)',
      '4 Orders/placeOrder null (tx)',
      '3 bank/refund compensate (saga)',
      '2 bank/refund compensate (saga)',
      '1 bank/debit cancel (tcc)',
    ]);
    expect(current.tx.status).toBe('rolled_back');
  });

  it('rollback: a newer step not yet undone holds back every older one', () => {
    const stuck = loaded({ status: 'rolling_back', reason: 'client' }, [
      { branchId: '1', kind: 'tcc', status: 'prepared' },
      { branchId: '2', kind: 'saga', status: 'committed' },
    ]);
    const wave = workflow.nextDecided(stuck);
    const next = after(machineOf(stuck, workflow), ...wave.answered([{ kind: 'transient', error: 'HTTP 503' }]));
    expect(next.branches.map((b) => b.status)).toEqual(['prepared', 'committed']);
    expect(called(workflow.nextDecided(stuck))).toEqual(['2 bank/debit compensate (saga)']);
  });

  it('says each step\'s kind from its record', () => {
    expect(workflow.kindOf({ branchId: '1', kind: '2pc' })).toBe('2pc');
    expect(() => workflow.kindOf({ branchId: '1', kind: null })).toThrow('has no kind');
  });
});
