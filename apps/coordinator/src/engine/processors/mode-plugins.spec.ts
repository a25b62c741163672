/**
 * What each mode's plug-in owns, without the engine: how a begin request becomes a new
 * transaction (and which refusals name which field), the phase each branch gets by its kind,
 * and the waves it chooses.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, type Mode } from '@nest-dtx/protocol';
import { CoordinatorConfig, loadCoordinatorEnv } from '../../config/coordinator.config.js';
import type { RegisteredParticipant } from '../../participants/participant-signing.js';
import type { ParticipantsService } from '../../participants/participants.service.js';
import { UnresolvedParticipantError } from '../../participants/unresolved-participant.error.js';
import { DatabaseTime } from '../../store/database-clock.js';
import type { BranchRecord, LoadedTx, TxRecord } from '../../store/records.js';
import type { BranchKind } from '../branch-kind.js';
import { InvalidRequestError } from '../errors.js';
import { machineOf } from '../machine.js';
import { COMMITTING_MOVES, transition, type ModeRules } from '../state-machine.js';
import { branchCalls, isPostponed, type Wave } from '../wave.js';
import type { BeginRequest, ModeProcessor } from './mode-processor.js';
import { MsgProcessor } from './msg.processor.js';
import { SagaProcessor } from './saga.processor.js';
import { TccProcessor } from './tcc.processor.js';

/** Registered participants: `shop` (spelled `Shop`), and `feed`, a publish target. */
const participants = {
  resolve(name: string, action: string, mode: Mode, prefix: string): Promise<RegisteredParticipant> {
    const field = (key: string) => (prefix ? `${prefix}.${key}` : key);
    const known: Record<string, { name: string; publish: boolean }> = { shop: { name: 'Shop', publish: false }, feed: { name: 'feed', publish: true } };
    const found = known[name.toLowerCase()];
    if (!found) return Promise.reject(new UnresolvedParticipantError(ErrorCode.UNKNOWN_PARTICIPANT, field('participant'), `participant ${name} is not registered`));
    if (action === 'unknown') return Promise.reject(new UnresolvedParticipantError(ErrorCode.UNKNOWN_ACTION, field('action'), `participant ${name} has no action ${action} for mode ${mode}`));
    return Promise.resolve(found as unknown as RegisteredParticipant);
  },
} as unknown as ParticipantsService;

const config = new CoordinatorConfig(loadCoordinatorEnv({ INSTANCE_ID: 'plugins-spec', MAX_BRANCHES_PER_TRANSACTION: '3' }));
const tcc = new TccProcessor(participants, config, new DatabaseTime());
const saga = new SagaProcessor(participants, config);
const msg = new MsgProcessor(participants, config, new DatabaseTime());

const request = (mode: Mode, over: Partial<BeginRequest> = {}): BeginRequest => ({
  mode, gid: 'g', gidChosen: true, timeoutMs: 10_000, metadata: {}, requestHash: 'h', traceParent: null, ownerKeyDigest: null, ...over,
});
const shopBranch = (branchId?: string) => ({ ...(branchId ? { branchId } : {}), participant: 'shop', action: 'order' });
const step = (name: string, dependsOn?: string[]) => ({ name, participant: 'shop', action: 'order', ...(dependsOn ? { dependsOn } : {}) });

/** The refusal a begin ends in, as the API would name it. */
async function refusal(mode: ModeProcessor, begin: BeginRequest): Promise<{ field: string; message: string }> {
  const error: unknown = await mode.begin(begin).then(() => null, (e: unknown) => e);
  if (!(error instanceof InvalidRequestError) && !(error instanceof UnresolvedParticipantError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return { field: error.field, message: error.message };
}

const NOW = new Date();
function loaded(tx: Partial<TxRecord>, branches: Array<Partial<BranchRecord> & { branchId: string }>): LoadedTx {
  return {
    tx: { gid: 'g', mode: 'tcc', status: 'active', reason: null, oneShot: true, concurrent: false, requestHash: 'h', metadata: {}, timeoutMs: 10_000,
      deadline: new Date(NOW.getTime() + 10_000), version: 1, attempts: 0, needsAttention: false, nextAttemptAt: null, leaseOwner: null, leaseUntil: null,
      traceParent: null, check: null, workflow: null, input: null, result: null, ownerKeyDigest: null, createdAt: NOW, updatedAt: NOW, ...tx },
    branches: branches.map((b, i) => ({ gid: 'g', seq: i + 1, participant: 'Shop', action: 'order', payload: {}, dependsOn: [], kind: null, compensate: null, status: 'pending', waitingSince: null, attempts: 0,
      lastError: null, result: null, createdAt: NOW, updatedAt: NOW, ...b })),
  };
}
const called = (wave: Wave) => wave.calls.map((c) => `${c.target.branchId} ${c.phase}`);

describe('begin: tcc / 2pc', () => {
  it('without branches: interactive, active, looked at at its deadline', async () => {
    const parts = await tcc.begin(request('tcc'));
    expect(parts).toEqual({
      branches: [], oneShot: false, status: 'active', branchStatus: 'pending', firstLook: 'deadline',
      events: [{ type: 'created', to: 'active', detail: { mode: 'tcc', oneShot: false, timeoutMs: 10_000 } }],
    });
  });

  it('with branches: one-shot, ids b1… where none is given, participants in their registered spelling', async () => {
    const parts = await tcc.begin(request('tcc', { branches: [shopBranch(), shopBranch('mine')] }));
    expect(parts.oneShot).toBe(true);
    expect(parts.branches).toEqual([
      { branchId: 'b1', participant: 'Shop', action: 'order', payload: {} },
      { branchId: 'mine', participant: 'Shop', action: 'order', payload: {} },
    ]);
    expect(parts.events.slice(1)).toEqual([
      { type: 'branch_added', branchId: 'b1', to: 'pending', detail: { participant: 'Shop', action: 'order' } },
      { type: 'branch_added', branchId: 'mine', to: 'pending', detail: { participant: 'Shop', action: 'order' } },
    ]);
  });

  it.each<[string, Partial<BeginRequest>, string, string]>([
    ['check', { check: { participant: 'shop', action: 'c' } }, 'check', 'check is only for mode msg'],
    ['submit', { submit: false }, 'submit', 'submit is only for mode msg'],
    ['steps', { steps: [step('s1')] }, 'steps', 'steps is only for mode saga'],
    ['a branchId twice', { branches: [shopBranch('x'), shopBranch('x')] }, 'branches.1.branchId', 'branches.1.branchId x is used twice'],
    ['too many branches', { branches: ['a', 'b', 'c', 'd'].map(shopBranch) }, 'branches', 'branches must contain no more than 3 elements (MAX_BRANCHES_PER_TRANSACTION)'],
    ['an unknown participant', { branches: [shopBranch(), { participant: 'nobody', action: 'order' }] }, 'branches.1.participant', 'participant nobody is not registered'],
    ['an unknown action', { branches: [{ participant: 'shop', action: 'unknown' }] }, 'branches.0.action', 'participant shop has no action unknown for mode tcc'],
  ])('refuses %s, naming the field', async (_name, over, field, message) => {
    expect(await refusal(tcc, request('tcc', over))).toEqual({ field, message });
  });
});

describe('begin: saga', () => {
  it('steps become branches named after them, each depending on the one before; resumed after a lease', async () => {
    const parts = await saga.begin(request('saga', { steps: [step('s1'), step('s2', ['s1'])] }));
    expect(parts).toMatchObject({ oneShot: true, status: 'active', branchStatus: 'pending', firstLook: 'lease' });
    expect(parts.branches.map((b) => [b.branchId, b.dependsOn])).toEqual([['s1', []], ['s2', ['s1']]]);
  });

  it.each<[string, Partial<BeginRequest>, string, string]>([
    ['branches', { branches: [shopBranch()] }, 'branches', 'mode saga takes steps, not branches'],
    ['no steps', {}, 'steps', 'steps is required for mode saga'],
    ['a cycle', { concurrent: true, steps: [step('s1', ['s2']), step('s2', ['s1'])] }, 'steps', 'steps s1, s2 form a dependency cycle'],
    ['an unknown step', { concurrent: true, steps: [step('s1', ['nope'])] }, 'steps', 'step s1 depends on unknown step nope'],
    ['an unknown participant', { steps: [{ name: 's1', participant: 'nobody', action: 'order' }] }, 'steps.0.participant', 'participant nobody is not registered'],
  ])('refuses %s, naming the field', async (_name, over, field, message) => {
    expect(await refusal(saga, request('saga', over))).toEqual({ field, message });
  });
});

describe('begin: msg', () => {
  const message = (over: Partial<BeginRequest> = {}) => request('msg', { branches: [shopBranch()], check: { participant: 'SHOP', action: 'check' }, ...over });

  it('prepared: active, its branches ready, checked at its deadline; the check on its registered spelling', async () => {
    const parts = await msg.begin(message());
    expect(parts).toMatchObject({ oneShot: false, status: 'active', branchStatus: 'prepared', firstLook: 'deadline', check: { participant: 'Shop', action: 'check' } });
    expect(parts.events[1]).toMatchObject({ type: 'branch_added', to: 'prepared' });
  });

  it('submitted: committing at once (its insert is the commit point), resumed after a lease', async () => {
    expect(await msg.begin(message({ submit: true }))).toMatchObject({ oneShot: true, status: 'committing', firstLook: 'lease' });
  });

  it.each<[string, Partial<BeginRequest>, string, string]>([
    ['no branches', { branches: undefined }, 'branches', 'branches is required for mode msg'],
    ['no check', { check: undefined }, 'check', 'check is required for mode msg'],
    ['the reserved branchId', { branches: [shopBranch('check')] }, 'branches.0.branchId', 'branches.0.branchId check is reserved in mode msg for the check-back'],
    ['a publish target as the check', { check: { participant: 'feed', action: 'check' } }, 'check.participant', 'participant feed is a publish target: it gets no reply, so it cannot answer the check'],
    ['an unknown check participant', { check: { participant: 'nobody', action: 'check' } }, 'check.participant', 'participant nobody is not registered'],
    ['steps', { steps: [step('s1')] }, 'steps', 'steps is only for mode saga'],
  ])('refuses %s, naming the field', async (_name, over, field, message_) => {
    expect(await refusal(msg, message(over))).toEqual({ field, message: message_ });
  });
});

describe('each branch gets the phases of its kind', () => {
  // A mode whose branches are of two kinds, as a workflow's tcc and saga steps will be.
  const KINDS: Record<string, BranchKind> = { t: 'tcc', s: 'saga' };
  const mixed: Pick<ModeProcessor, 'rules' | 'kindOf'> = {
    rules: { moves: COMMITTING_MOVES, addsBranches: true, afterPhase1: { tcc: 'prepared', saga: 'committed' }, phase1Answers: 'held', clientDecides: true, atDeadline: 'roll_back' } satisfies ModeRules,
    kindOf: (b) => KINDS[b.branchId],
  };
  const both = loaded({}, [{ branchId: 't' }, { branchId: 's' }]).branches;

  it.each([
    ['active', ['t try', 's execute']],
    ['committing', ['t confirm', 's null']],
    ['rolling_back', ['t cancel', 's compensate']],
  ] as const)('%s: %j', (status, expected) => {
    expect(branchCalls(both, mixed, status).map((c) => `${c.target.branchId} ${c.phase}`)).toEqual(expected);
  });

  it('a phase-1 success makes each what its kind makes of one, and a commit asks each for that', () => {
    const machine = machineOf({ tx: { status: 'active', reason: null }, branches: both }, mixed);
    const answered = transition(machine, { type: 'phase1_answered', answers: [{ branchId: 't', answer: 'ok' }, { branchId: 's', answer: 'ok' }] });
    if (!answered.ok) throw new Error(answered.error);
    expect(answered.tx.branches.map((b) => b.status)).toEqual(['prepared', 'committed']);
    expect(transition(answered.tx, { type: 'commit_requested' })).toMatchObject({ ok: true, tx: { status: 'committing' } });
  });
});

describe('waves', () => {
  it('tcc one-shot: phase 1 on every branch once, decided with the answers; an interactive one calls no one by itself, due at its deadline', () => {
    const wave = tcc.nextActive(loaded({}, [{ branchId: 'a' }, { branchId: 'b' }]));
    if (!wave || isPostponed(wave)) throw new Error('expected a wave');
    expect(called(wave)).toEqual(['a try', 'b try']);
    expect(wave.answered([{ kind: 'ok', result: null }, { kind: 'failed', error: 'no' }]).map((e) => e.type)).toEqual(['phase1_answered', 'phase1_finished']);
    expect(tcc.nextActive(loaded({}, [{ branchId: 'a', attempts: 1 }, { branchId: 'b' }]))).toBeNull();
    const interactive = tcc.nextActive(loaded({ oneShot: false }, [{ branchId: 'a', status: 'prepared', attempts: 1 }]));
    expect(interactive).toMatchObject({ postponedMs: expect.any(Number) as unknown });
    expect((interactive as { postponedMs: number }).postponedMs).toBeGreaterThan(9_000);
    expect((interactive as { postponedMs: number }).postponedMs).toBeLessThanOrEqual(10_000);
  });

  it('tcc after phase 1 was sent: only the branches still waiting (they answered ongoing) are asked again, one-shot or interactive', () => {
    const since = new Date(NOW.getTime() - 1_000);
    const branches = [
      { branchId: 'a', status: 'prepared' as const, attempts: 1 },
      { branchId: 'b', attempts: 2, waitingSince: since },
      { branchId: 'c', status: 'prepared' as const, attempts: 1 },
    ];
    const oneShot = tcc.nextActive(loaded({}, branches));
    if (!oneShot || isPostponed(oneShot)) throw new Error('expected a wave');
    expect(called(oneShot)).toEqual(['b try']);
    // The one-shot decides on its answer (unless still waiting); an interactive one leaves it to the client.
    expect(oneShot.answered([{ kind: 'ongoing' }]).map((e) => e.type)).toEqual(['phase1_answered', 'phase1_finished']);
    const interactive = tcc.nextActive(loaded({ oneShot: false }, branches));
    if (!interactive || isPostponed(interactive)) throw new Error('expected a wave');
    expect(called(interactive)).toEqual(['b try']);
    expect(interactive.answered([{ kind: 'ok', result: null }])).toEqual([{ type: 'phase1_answered', answers: [{ branchId: 'b', answer: 'ok' }] }]);
  });

  it('waveOf: the wave of the branches named alone, in the phase each has now, answered as the mode\'s own waves are', () => {
    const branches = [{ branchId: 'a', attempts: 1, waitingSince: NOW }, { branchId: 'b', status: 'prepared' as const, attempts: 1 }];
    const oneShot = tcc.waveOf(loaded({}, branches), new Set(['a']));
    expect(called(oneShot)).toEqual(['a try']);
    expect(oneShot.answered([{ kind: 'ok', result: null }])).toEqual([{ type: 'phase1_answered', answers: [{ branchId: 'a', answer: 'ok' }] }, { type: 'phase1_finished' }]);
    expect(called(tcc.waveOf(loaded({ status: 'rolling_back' }, branches), new Set(['b'])))).toEqual(['b cancel']);
    const step = saga.waveOf(loaded({ mode: 'saga' }, [{ branchId: 's1', attempts: 1, waitingSince: NOW }]), new Set(['s1']));
    expect(step.answered([{ kind: 'failed', error: 'no' }])).toEqual([{ type: 'steps_answered', answers: [{ branchId: 's1', answer: 'failed' }] }]);
    const message = loaded({ mode: 'msg', deadline: new Date(NOW.getTime() - 1), check: { participant: 'Shop', action: 'check' } }, [{ branchId: 'a', status: 'prepared' }]);
    expect(called(msg.waveOf(message, new Set(['check'])))).toEqual(['check check']);
    expect(called(msg.waveOf({ ...message, tx: { ...message.tx, status: 'committing' } }, new Set(['a'])))).toEqual(['a execute']);
  });

  it('tcc phase 2: every branch still owed it, at once', () => {
    const wave = tcc.nextDecided(loaded({ status: 'committing' }, [{ branchId: 'a', status: 'committed' }, { branchId: 'b', status: 'prepared' }]));
    expect(called(wave)).toEqual(['b confirm']);
  });

  it('saga: the steps whose dependencies committed; compensation newest first', () => {
    const steps = [{ branchId: 's1', status: 'committed' as const }, { branchId: 's2', dependsOn: ['s1'] }, { branchId: 's3', dependsOn: ['s2'] }];
    const forward = saga.nextActive(loaded({ mode: 'saga' }, steps));
    if (!forward || isPostponed(forward)) throw new Error('expected a wave');
    expect(called(forward)).toEqual(['s2 execute']);
    expect(forward.answered([{ kind: 'ok', result: null }])).toEqual([{ type: 'steps_answered', answers: [{ branchId: 's2', answer: 'ok' }] }]);
    const back = saga.nextDecided(loaded({ mode: 'saga', status: 'rolling_back' }, [steps[0], { ...steps[1], status: 'failed' }, { ...steps[2], status: 'rolled_back' }]));
    expect(called(back)).toEqual(['s2 compensate']);
  });

  it('msg: postponed to its deadline before it, the check-back after; delivery to every branch owed it', () => {
    expect(msg.nextActive(loaded({ mode: 'msg', check: { participant: 'Shop', action: 'check' } }, [{ branchId: 'a', status: 'prepared' }]))).toMatchObject({
      postponedMs: expect.any(Number) as unknown,
    });
    const due = loaded({ mode: 'msg', deadline: new Date(NOW.getTime() - 1), check: { participant: 'Shop', action: 'check' } }, [{ branchId: 'a', status: 'prepared' }]);
    const check = msg.nextActive(due);
    if (!check || isPostponed(check)) throw new Error('expected a wave');
    expect(check.calls).toEqual([{ target: { branchId: 'check', participant: 'Shop', action: 'check', payload: {} }, branch: null, phase: 'check' }]);
    expect(check.answered([{ kind: 'failed', error: 'no' }])).toEqual([{ type: 'check_answered', answer: 'not_committed' }]);
    expect(called(msg.nextDecided({ ...due, tx: { ...due.tx, status: 'committing' } }))).toEqual(['a execute']);
    expect(called(msg.nextDecided({ ...due, tx: { ...due.tx, status: 'rolling_back' } }))).toEqual(['a null']);
  });
});
