/**
 * The round's rules, as the pure functions the round writes by: what each answer does to a
 * branch, the history, attempts, attention, and when the transaction is looked at again.
 */
import { describe, expect, it } from 'vitest';
import type { CallOutcome, GlobalStatus } from '@nest-dtx/protocol';
import type { BranchRecord, TxRecord } from '../store/records.js';
import { machineOf } from './machine.js';
import { MSG_RULES } from './processors/msg.processor.js';
import { SAGA_RULES } from './processors/saga.processor.js';
import { TCC_RULES } from './processors/tcc.processor.js';
import { transition, type MachineEvent, type MachineTx, type ModeRules } from './state-machine.js';
import { scheduleOf, settle, stageOf, type ScheduleClock } from './transaction-round.js';
import { answersOf, branchCalls, type Wave } from './wave.js';
import { phase1AnswerOf, phase2AnswerOf } from './machine.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const ATTENTION_AFTER = 3;

function txRecord(over: Partial<TxRecord> = {}): TxRecord {
  return {
    gid: 'g', mode: 'tcc', status: 'active', reason: null, oneShot: true, concurrent: false, requestHash: 'h', metadata: {}, timeoutMs: 60_000,
    deadline: new Date(NOW.getTime() + 60_000), version: 1, attempts: 0, needsAttention: false, nextAttemptAt: null, leaseOwner: 'me',
    leaseUntil: null, traceParent: null, check: null, workflow: null, input: null, result: null, ownerKeyDigest: null, createdAt: NOW, updatedAt: NOW, ...over,
  };
}

function branch(branchId: string, over: Partial<BranchRecord> = {}): BranchRecord {
  return { gid: 'g', branchId, seq: 1, participant: `p-${branchId}`, action: 'act', payload: {}, dependsOn: [], kind: null, compensate: null, status: 'pending', waitingSince: null, attempts: 0,
    lastError: null, result: null, createdAt: NOW, updatedAt: NOW, ...over };
}

/** A mode of the rules given, whose branches are all of one kind. */
const modeOf = (rules: ModeRules, kind: 'tcc' | 'saga' | 'msg') => ({ rules, kindOf: () => kind });

/** The round's inputs for a wave of `branches` answered with `outcomes`, as the engine has the machine read them. */
function settled(rules: ModeRules, kind: 'tcc' | 'saga' | 'msg', tx: TxRecord, branches: BranchRecord[], outcomes: CallOutcome[], events: (wave: Wave) => (o: readonly CallOutcome[]) => MachineEvent[]) {
  const mode = modeOf(rules, kind);
  const calls = branchCalls(branches, mode, tx.status);
  const wave: Wave = { calls, answered: (o) => events(wave)(o) };
  const machineEvents = wave.answered(outcomes);
  let next: MachineTx = machineOf({ tx, branches }, mode);
  for (const event of machineEvents) {
    const result = transition(next, event);
    if (!result.ok) throw new Error(result.error);
    next = result.tx;
  }
  return settle(tx, wave, outcomes, machineEvents, next, ATTENTION_AFTER);
}

const phase2 = (wave: Wave) => (o: readonly CallOutcome[]): MachineEvent[] => [{ type: 'phase2_answered', answers: answersOf(wave.calls, o, phase2AnswerOf) }];
const oneShot = (wave: Wave) => (o: readonly CallOutcome[]): MachineEvent[] => [{ type: 'phase1_answered', answers: answersOf(wave.calls, o, phase1AnswerOf) }, { type: 'phase1_finished' }];
const steps = (wave: Wave) => (o: readonly CallOutcome[]): MachineEvent[] => [{ type: 'steps_answered', answers: answersOf(wave.calls, o, phase1AnswerOf) }];

const ok: CallOutcome = { kind: 'ok', result: { done: true } };
const down: CallOutcome = { kind: 'transient', error: 'HTTP 503' };
const refused: CallOutcome = { kind: 'failed', error: { reason: 'no' } };

describe('scheduleOf: the lease and due time of every write', () => {
  const clock = (msUntilDeadline: number): ScheduleClock => ({
    ownLease: () => ({ lease: { owner: 'me', ms: 30_000 }, nextAttemptInMs: 30_000 }),
    retryDelayMs: (attempt) => 1_000 * attempt,
    msUntil: () => msUntilDeadline,
  });
  const tx = { deadline: NOW };

  it('lets the lease go and is never due again once terminal', () => {
    expect(scheduleOf({ kind: 'never' }, tx, clock(5_000))).toEqual({ lease: null, nextAttemptInMs: null });
  });

  it('keeps the transaction under a fresh lease while there is more to do at once, due again when the lease ends', () => {
    expect(scheduleOf({ kind: 'now' }, tx, clock(5_000))).toEqual({ lease: { owner: 'me', ms: 30_000 }, nextAttemptInMs: 30_000 });
  });

  it('retries after the backoff of the attempt, the lease let go', () => {
    expect(scheduleOf({ kind: 'retry', attempt: 3, cappedAtDeadline: false }, tx, clock(1_000))).toEqual({ lease: null, nextAttemptInMs: 3_000 });
  });

  it('retries phase 1 no later than the deadline, and at once past it', () => {
    expect(scheduleOf({ kind: 'retry', attempt: 3, cappedAtDeadline: true }, tx, clock(1_200.4))).toEqual({ lease: null, nextAttemptInMs: 1_201 });
    expect(scheduleOf({ kind: 'retry', attempt: 1, cappedAtDeadline: true }, tx, clock(5_000))).toEqual({ lease: null, nextAttemptInMs: 1_000 });
    expect(scheduleOf({ kind: 'retry', attempt: 1, cappedAtDeadline: true }, tx, clock(-50))).toEqual({ lease: null, nextAttemptInMs: 0 });
  });

  it('is due when the mode asked, the lease let go', () => {
    expect(scheduleOf({ kind: 'in', ms: 1_999.2 }, tx, clock(5_000))).toEqual({ lease: null, nextAttemptInMs: 2_000 });
  });
});

describe('stageOf', () => {
  it.each<[GlobalStatus, 'try' | 'check' | 'confirm' | null, string]>([
    ['active', 'try', 'phase1'],
    ['active', 'check', 'check'],
    ['committing', 'confirm', 'phase2'],
    ['rolling_back', null, 'phase2'],
  ])('%s with a %s call is %s', (status, phase, stage) => {
    expect(stageOf(status, [{ target: branch('a'), branch: branch('a'), phase }])).toBe(stage);
  });
});

describe('settle: one round of answers as one write', () => {
  it('one-shot phase 1: the decision with every answer, a new stage (attempts 0), more to do at once; its cause named', () => {
    const result = settled(TCC_RULES, 'tcc', txRecord(), [branch('a'), branch('b')], [ok, down], oneShot);
    expect(result.next).toEqual({ kind: 'now' });
    expect(result.change).toMatchObject({ status: 'rolling_back', reason: 'branch_failed', attempts: 0 });
    expect(result.change).not.toHaveProperty('needsAttention');
    expect(result.change.branches).toEqual([
      { branchId: 'a', status: 'prepared', calls: 1, result: { done: true } },
      { branchId: 'b', status: 'pending', calls: 1, lastError: 'HTTP 503' },
    ]);
    expect(result.change.events.at(-1)).toEqual({ type: 'status', from: 'active', to: 'rolling_back', detail: { reason: 'branch_failed', cause: 'phase1_finished' } });
  });

  it('saga steps with no answer: retried before the deadline, counted, never flagged (the deadline ends them)', () => {
    const result = settled(SAGA_RULES, 'saga', txRecord({ mode: 'saga', attempts: ATTENTION_AFTER + 5 }), [branch('s1')], [down], steps);
    expect(result.next).toEqual({ kind: 'retry', attempt: ATTENTION_AFTER + 6, cappedAtDeadline: true });
    expect(result.change).not.toHaveProperty('needsAttention');
    expect(result.change.events.map((e) => e.type)).toEqual(['call']);
  });

  it('saga: a step done clears the error of its earlier try, and the last one commits, terminal, with no cause', () => {
    const result = settled(SAGA_RULES, 'saga', txRecord({ mode: 'saga', attempts: 2 }), [branch('s1', { lastError: 'HTTP 503', attempts: 1 })], [ok], steps);
    expect(result.next).toEqual({ kind: 'never' });
    expect(result.change.branches).toEqual([{ branchId: 's1', status: 'committed', calls: 1, result: { done: true }, lastError: null }]);
    expect(result.change.events).toEqual([
      { type: 'call', branchId: 's1', from: 'pending', to: 'committed', detail: { participant: 'p-s1', action: 'act', phase: 'execute', outcome: 'ok', attempt: 2 } },
      { type: 'status', from: 'active', to: 'committed', detail: { reason: null } },
    ]);
  });

  it('phase 2 with a failure: retried with backoff, flagged once past ATTENTION_AFTER_ATTEMPTS', () => {
    const prepared = [branch('a', { status: 'prepared' }), branch('b', { status: 'prepared' })];
    const early = settled(TCC_RULES, 'tcc', txRecord({ status: 'committing', attempts: 0 }), prepared, [ok, down], phase2);
    expect(early.next).toEqual({ kind: 'retry', attempt: 1, cappedAtDeadline: false });
    expect(early.change).toMatchObject({ status: 'committing', attempts: 1, needsAttention: false });

    const late = settled(TCC_RULES, 'tcc', txRecord({ status: 'committing', attempts: ATTENTION_AFTER - 1 }), prepared, [ok, down], phase2);
    expect(late.change).toMatchObject({ attempts: ATTENTION_AFTER, needsAttention: true });
    expect(late.change.events.at(-1)).toEqual({ type: 'attention', detail: { attempts: ATTENTION_AFTER, refused: false } });

    const flagged = settled(TCC_RULES, 'tcc', txRecord({ status: 'committing', attempts: ATTENTION_AFTER, needsAttention: true }), prepared, [ok, down], phase2);
    expect(flagged.change.events.map((e) => e.type)).toEqual(['call', 'call']);
  });

  it('phase 2 refused (409, a participant bug): retried and flagged at once', () => {
    const result = settled(TCC_RULES, 'tcc', txRecord({ status: 'rolling_back', reason: 'client' }), [branch('a', { status: 'prepared' })], [refused], phase2);
    expect(result.next.kind).toBe('retry');
    expect(result.change).toMatchObject({ needsAttention: true, branches: [{ branchId: 'a', status: 'prepared', calls: 1, lastError: { reason: 'no' } }] });
    expect(result.change.events.at(-1)).toEqual({ type: 'attention', detail: { attempts: 1, refused: true } });
  });

  it('phase 2 all answered but branches left (a compensation round in dependency order): more to do at once', () => {
    const tx = txRecord({ mode: 'saga', status: 'rolling_back', reason: 'branch_failed' });
    const mode = modeOf(SAGA_RULES, 'saga');
    const all = [branch('s1', { status: 'committed' }), branch('s2', { status: 'failed', lastError: { reason: 'no' } })];
    const calls = branchCalls([all[1]], mode, tx.status);
    const wave: Wave = { calls, answered: (o) => phase2(wave)(o) };
    const events = wave.answered([ok]);
    const next = transition(machineOf({ tx, branches: all }, mode), events[0]);
    if (!next.ok) throw new Error(next.error);
    const result = settle(tx, wave, [ok], events, next.tx, ATTENTION_AFTER);
    expect(result.next).toEqual({ kind: 'now' });
    // Why the step failed stays visible after its compensation.
    expect(result.change.branches).toEqual([{ branchId: 's2', status: 'rolled_back', calls: 1, lastError: undefined }]);
  });

  it('a message rolled back: nobody is called (its branches\' kind has no rollback phase), each ends as it stands', () => {
    const result = settled(MSG_RULES, 'msg', txRecord({ mode: 'msg', status: 'rolling_back', reason: 'client' }), [branch('a', { status: 'prepared' })], [{ kind: 'ok', result: null }], phase2);
    expect(result.terminal).toBe(true);
    expect(result.change.branches).toEqual([{ branchId: 'a', status: 'rolled_back', calls: 0, lastError: null }]);
    expect(result.change.events.map((e) => e.type)).toEqual(['status']);
  });

  it('the check-back: no branch changes, its call counted on the transaction; no answer flags after ATTENTION_AFTER_ATTEMPTS', () => {
    const tx = txRecord({ mode: 'msg', attempts: ATTENTION_AFTER - 1, check: { participant: 'order', action: 'check' } });
    const wave: Wave = {
      calls: [{ target: { branchId: 'check', participant: 'order', action: 'check', payload: {} }, branch: null, phase: 'check' }],
      answered: () => [{ type: 'check_answered', answer: 'unknown' }],
    };
    const result = settle(tx, wave, [down], wave.answered([down]), machineOf({ tx, branches: [] }, modeOf(MSG_RULES, 'msg')), ATTENTION_AFTER);
    expect(result.next).toEqual({ kind: 'retry', attempt: ATTENTION_AFTER, cappedAtDeadline: false });
    expect(result.change.branches).toEqual([]);
    expect(result.change.events).toEqual([
      { type: 'call', branchId: 'check', detail: { participant: 'order', action: 'check', phase: 'check', outcome: 'transient', attempt: ATTENTION_AFTER, error: 'HTTP 503' } },
      { type: 'attention', detail: { attempts: ATTENTION_AFTER, refused: false } },
    ]);
  });
});
