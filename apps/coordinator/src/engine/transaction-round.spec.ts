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
import { scheduleOf, settle, settlementOf, stageOf, type AnswerSource, type ScheduleClock } from './transaction-round.js';
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

/**
 * The round's inputs for a wave of `branches` answered with `outcomes` (from calls, or a report),
 * as the engine has the machine read them; `others` are the transaction's branches outside the wave.
 */
function settled(
  rules: ModeRules,
  kind: 'tcc' | 'saga' | 'msg',
  tx: TxRecord,
  branches: BranchRecord[],
  outcomes: CallOutcome[],
  events: (wave: Wave) => (o: readonly CallOutcome[]) => MachineEvent[],
  { source = 'calls', others = [] }: { source?: AnswerSource; others?: BranchRecord[] } = {},
) {
  const mode = modeOf(rules, kind);
  const calls = branchCalls(branches, mode, tx.status);
  const wave: Wave = { calls, answered: (o) => events(wave)(o) };
  const machineEvents = wave.answered(outcomes);
  const before: MachineTx = machineOf({ tx, branches: [...branches, ...others] }, mode);
  let next = before;
  for (const event of machineEvents) {
    const result = transition(next, event);
    if (!result.ok) throw new Error(result.error);
    next = result.tx;
  }
  return settle({ tx, wave, outcomes, events: machineEvents, before, next, source }, ATTENTION_AFTER);
}

const phase2 = (wave: Wave) => (o: readonly CallOutcome[]): MachineEvent[] => [{ type: 'phase2_answered', answers: answersOf(wave.calls, o, phase2AnswerOf) }];
const oneShot = (wave: Wave) => (o: readonly CallOutcome[]): MachineEvent[] => [{ type: 'phase1_answered', answers: answersOf(wave.calls, o, phase1AnswerOf) }, { type: 'phase1_finished' }];
const steps = (wave: Wave) => (o: readonly CallOutcome[]): MachineEvent[] => [{ type: 'steps_answered', answers: answersOf(wave.calls, o, phase1AnswerOf) }];

const ok: CallOutcome = { kind: 'ok', result: { done: true } };
const down: CallOutcome = { kind: 'transient', error: 'HTTP 503' };
const refused: CallOutcome = { kind: 'failed', error: { reason: 'no' } };

describe('scheduleOf: the lease and due time of every write', () => {
  /** Times in ms from NOW; the backoff 1 s an attempt; the wait after an unhinted ongoing answer half the time waited, at least 200 ms. */
  const clock = (msUntilDeadline: number): ScheduleClock => ({
    ownLease: () => ({ lease: { owner: 'me', ms: 30_000 }, nextAttemptInMs: 30_000 }),
    retryDelayMs: (attempt) => 1_000 * attempt,
    waitingDelayMs: (waited) => Math.max(200, waited / 2),
    msUntil: (time) => (time === NOW ? msUntilDeadline : time.getTime() - NOW.getTime()),
  });
  const tx = { deadline: NOW, nextAttemptAt: null };
  const retry = (attempt: number | null, cappedAtDeadline: boolean, ongoing: { retryAfterMs: number | null; unhinted: { since: Date | null } | null } | null = null) =>
    ({ kind: 'retry', attempt, ongoing, cappedAtDeadline }) as const;

  it('lets the lease go and is never due again once terminal', () => {
    expect(scheduleOf({ kind: 'never' }, tx, clock(5_000))).toEqual({ lease: null, nextAttemptInMs: null });
  });

  it('keeps the transaction under a fresh lease while there is more to do at once, due again when the lease ends', () => {
    expect(scheduleOf({ kind: 'now' }, tx, clock(5_000))).toEqual({ lease: { owner: 'me', ms: 30_000 }, nextAttemptInMs: 30_000 });
  });

  it('retries after the backoff of the attempt, the lease let go', () => {
    expect(scheduleOf(retry(3, false), tx, clock(1_000))).toEqual({ lease: null, nextAttemptInMs: 3_000 });
  });

  it('retries phase 1 no later than the deadline, and at once past it', () => {
    expect(scheduleOf(retry(3, true), tx, clock(1_200.4))).toEqual({ lease: null, nextAttemptInMs: 1_201 });
    expect(scheduleOf(retry(1, true), tx, clock(5_000))).toEqual({ lease: null, nextAttemptInMs: 1_000 });
    expect(scheduleOf(retry(1, true), tx, clock(-50))).toEqual({ lease: null, nextAttemptInMs: 0 });
  });

  it('asks an ongoing answer again at its retryAfterMs, never sooner, even after a shorter failure backoff', () => {
    expect(scheduleOf(retry(null, false, { retryAfterMs: 7_000, unhinted: null }), tx, clock(60_000))).toEqual({ lease: null, nextAttemptInMs: 7_000 });
    expect(scheduleOf(retry(2, false, { retryAfterMs: 7_000, unhinted: null }), tx, clock(60_000))).toEqual({ lease: null, nextAttemptInMs: 7_000 });
    // A failure whose backoff is longer than the hint: the later of the two.
    expect(scheduleOf(retry(9, false, { retryAfterMs: 7_000, unhinted: null }), tx, clock(60_000))).toEqual({ lease: null, nextAttemptInMs: 9_000 });
  });

  it('asks an ongoing answer without a hint again after a wait that grows with how long it has waited', () => {
    expect(scheduleOf(retry(null, false, { retryAfterMs: null, unhinted: { since: null } }), tx, clock(60_000)).nextAttemptInMs).toBe(200);
    const waitedTenSeconds = new Date(NOW.getTime() - 10_000);
    expect(scheduleOf(retry(null, false, { retryAfterMs: null, unhinted: { since: waitedTenSeconds } }), tx, clock(60_000)).nextAttemptInMs).toBe(5_000);
    // With a hint from another branch too: the later.
    expect(scheduleOf(retry(null, false, { retryAfterMs: 8_000, unhinted: { since: waitedTenSeconds } }), tx, clock(60_000)).nextAttemptInMs).toBe(8_000);
  });

  it('caps an ongoing wait in phase 1 at the deadline, which then rolls it back', () => {
    expect(scheduleOf(retry(null, true, { retryAfterMs: 7_000, unhinted: null }), tx, clock(2_500))).toEqual({ lease: null, nextAttemptInMs: 2_500 });
    // Phase 2 and the check-back wait as long as it takes.
    expect(scheduleOf(retry(null, false, { retryAfterMs: 7_000, unhinted: null }), tx, clock(-1_000))).toEqual({ lease: null, nextAttemptInMs: 7_000 });
  });

  it('after a reported outcome that leaves others waiting: due when it was, the lease let go', () => {
    expect(scheduleOf({ kind: 'when_due' }, { deadline: NOW, nextAttemptAt: new Date(NOW.getTime() + 4_000) }, clock(60_000))).toEqual({ lease: null, nextAttemptInMs: 4_000 });
    expect(scheduleOf({ kind: 'when_due' }, { deadline: NOW, nextAttemptAt: new Date(NOW.getTime() - 4_000) }, clock(60_000))).toEqual({ lease: null, nextAttemptInMs: 0 });
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
    expect(result.next).toEqual({ kind: 'retry', attempt: ATTENTION_AFTER + 6, ongoing: null, cappedAtDeadline: true });
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
    expect(early.next).toEqual({ kind: 'retry', attempt: 1, ongoing: null, cappedAtDeadline: false });
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
    const result = settle({ tx, wave, outcomes: [ok], events, before: machineOf({ tx, branches: all }, mode), next: next.tx, source: 'calls' }, ATTENTION_AFTER);
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
    const machine = machineOf({ tx, branches: [] }, modeOf(MSG_RULES, 'msg'));
    const result = settle({ tx, wave, outcomes: [down], events: wave.answered([down]), before: machine, next: machine, source: 'calls' }, ATTENTION_AFTER);
    expect(result.next).toEqual({ kind: 'retry', attempt: ATTENTION_AFTER, ongoing: null, cappedAtDeadline: false });
    expect(result.change.branches).toEqual([]);
    expect(result.change.events).toEqual([
      { type: 'call', branchId: 'check', detail: { participant: 'order', action: 'check', phase: 'check', outcome: 'transient', attempt: ATTENTION_AFTER, error: 'HTTP 503' } },
      { type: 'attention', detail: { attempts: ATTENTION_AFTER, refused: false } },
    ]);
  });
});

describe('settle: ongoing answers (PROTOCOL.md 3.6)', () => {
  const ongoing = (retryAfterMs?: number): CallOutcome => (retryAfterMs === undefined ? { kind: 'ongoing' } : { kind: 'ongoing', retryAfterMs });
  const since = new Date(NOW.getTime() - 5_000);

  it('an ongoing answer neither settles its call nor fails it, in every stage', () => {
    for (const stage of ['phase1', 'check', 'phase2'] as const) {
      expect(settlementOf(ongoing(), stage)).toBe('waiting');
      expect(settlementOf(down, stage)).toBe('failed');
      expect(settlementOf(ok, stage)).toBe('settled');
    }
    expect(settlementOf(refused, 'phase1')).toBe('settled');
    expect(settlementOf(refused, 'phase2')).toBe('failed');
  });

  it('one-shot: a branch still ongoing does not end phase 1; it waits, asked again at its retryAfterMs, no attempt counted', () => {
    const result = settled(TCC_RULES, 'tcc', txRecord({ attempts: 2 }), [branch('a'), branch('b')], [ok, ongoing(3_000)], oneShot);
    expect(result.moved).toBe(false);
    expect(result.change).toMatchObject({ status: 'active', attempts: 2 });
    expect(result.change).not.toHaveProperty('needsAttention');
    expect(result.change.branches).toEqual([
      { branchId: 'a', status: 'prepared', calls: 1, result: { done: true } },
      { branchId: 'b', status: 'pending', calls: 1, waiting: true },
    ]);
    expect(result.next).toEqual({ kind: 'retry', attempt: null, ongoing: { retryAfterMs: 3_000, unhinted: null }, cappedAtDeadline: true });
    expect(result.change.events[1]).toMatchObject({ type: 'call', branchId: 'b', to: 'pending', detail: { outcome: 'ongoing', retryAfterMs: 3_000 } });
  });

  it('one-shot: a branch with no answer still rolls back, the one that answered ongoing with it (its wait ended by the decision)', () => {
    const result = settled(TCC_RULES, 'tcc', txRecord(), [branch('a'), branch('b')], [ongoing(), down], oneShot);
    expect(result.change).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
    expect(result.next).toEqual({ kind: 'now' });
    expect(result.change.branches.every((b) => b.waiting === undefined)).toBe(true);
  });

  it('one-shot asked again: the last waiting branch prepared decides the commit, and its wait is over', () => {
    const result = settled(TCC_RULES, 'tcc', txRecord({ attempts: 0 }), [branch('b', { waitingSince: since, attempts: 3 })], [ok], oneShot, {
      others: [branch('a', { status: 'prepared', attempts: 1 })],
    });
    expect(result.change).toMatchObject({ status: 'committing' });
    expect(result.change.branches).toEqual([{ branchId: 'b', status: 'prepared', calls: 1, result: { done: true }, waiting: false }]);
  });

  it('one-shot asked again: no answer from a branch that accepted its call leaves it waiting, retried with backoff, no rollback', () => {
    const result = settled(TCC_RULES, 'tcc', txRecord({ attempts: 1 }), [branch('b', { waitingSince: since, attempts: 3 })], [down], oneShot, {
      others: [branch('a', { status: 'prepared', attempts: 1 })],
    });
    expect(result.change).toMatchObject({ status: 'active', attempts: 2 });
    expect(result.change.branches).toEqual([{ branchId: 'b', status: 'pending', calls: 1, lastError: 'HTTP 503' }]);
    expect(result.next).toEqual({ kind: 'retry', attempt: 2, ongoing: null, cappedAtDeadline: true });
  });

  it('a saga step that answers ongoing waits, asked again since it began waiting; the saga goes on once it answers', () => {
    const waiting = settled(SAGA_RULES, 'saga', txRecord({ mode: 'saga' }), [branch('s1', { waitingSince: since, attempts: 2 })], [ongoing()], steps);
    expect(waiting.next).toEqual({ kind: 'retry', attempt: null, ongoing: { retryAfterMs: null, unhinted: { since } }, cappedAtDeadline: true });
    expect(waiting.change.branches).toEqual([{ branchId: 's1', status: 'pending', calls: 1 }]);
    const done = settled(SAGA_RULES, 'saga', txRecord({ mode: 'saga' }), [branch('s1', { waitingSince: since, attempts: 3 })], [ok], steps);
    expect(done.change.branches[0]).toMatchObject({ status: 'committed', waiting: false });
  });

  it('phase 2 answered ongoing however often: not delivered, asked again, never counted toward attention nor flagged', () => {
    const prepared = [branch('a', { status: 'prepared' }), branch('b', { status: 'prepared', waitingSince: since })];
    const result = settled(TCC_RULES, 'tcc', txRecord({ status: 'committing', attempts: ATTENTION_AFTER - 1 }), prepared, [ongoing(), ongoing(60_000)], phase2);
    expect(result.change).toMatchObject({ status: 'committing', attempts: ATTENTION_AFTER - 1, needsAttention: false });
    expect(result.change.events.map((e) => e.type)).toEqual(['call', 'call']);
    expect(result.change.branches).toEqual([
      { branchId: 'a', status: 'prepared', calls: 1, waiting: true },
      { branchId: 'b', status: 'prepared', calls: 1 },
    ]);
    expect(result.next).toEqual({ kind: 'retry', attempt: null, ongoing: { retryAfterMs: 60_000, unhinted: { since: null } }, cappedAtDeadline: false });
  });

  it('the check-back answered ongoing: asked again later, no attempt counted, no flag', () => {
    const tx = txRecord({ mode: 'msg', attempts: ATTENTION_AFTER, check: { participant: 'order', action: 'check' } });
    const wave: Wave = {
      calls: [{ target: { branchId: 'check', participant: 'order', action: 'check', payload: {} }, branch: null, phase: 'check' }],
      answered: () => [{ type: 'check_answered', answer: 'unknown' }],
    };
    const machine = machineOf({ tx, branches: [] }, modeOf(MSG_RULES, 'msg'));
    const result = settle({ tx, wave, outcomes: [ongoing()], events: wave.answered([ongoing()]), before: machine, next: machine, source: 'calls' }, ATTENTION_AFTER);
    expect(result.change).toMatchObject({ attempts: ATTENTION_AFTER, needsAttention: false });
    expect(result.change.events.map((e) => e.type)).toEqual(['call']);
    // Asked since the deadline.
    expect(result.next).toEqual({ kind: 'retry', attempt: null, ongoing: { retryAfterMs: null, unhinted: { since: tx.deadline } }, cappedAtDeadline: false });
  });

  it('a reported outcome: no call counted, its own history event; the others still waiting keep their time, the last one moves on now', () => {
    const others = [branch('c', { waitingSince: since, attempts: 1 })];
    const reported = settled(TCC_RULES, 'tcc', txRecord(), [branch('a', { waitingSince: since, attempts: 1 })], [ok], oneShot, { source: 'report', others });
    expect(reported.change).toMatchObject({ status: 'active' });
    expect(reported.change.branches).toEqual([{ branchId: 'a', status: 'prepared', calls: 0, result: { done: true }, waiting: false }]);
    expect(reported.change.events).toEqual([
      { type: 'outcome_reported', branchId: 'a', from: 'pending', to: 'prepared', detail: { participant: 'p-a', action: 'act', phase: 'try', outcome: 'ok' } },
    ]);
    expect(reported.next).toEqual({ kind: 'when_due' });

    const last = settled(TCC_RULES, 'tcc', txRecord(), [branch('a', { waitingSince: since, attempts: 1 })], [refused], oneShot, { source: 'report', others });
    // Refused: rolled back at once, the other branch's wait ended with it.
    expect(last.change).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
    expect(last.change.branches).toEqual([
      { branchId: 'a', status: 'failed', calls: 0, lastError: { reason: 'no' }, waiting: false },
      { branchId: 'c', calls: 0, waiting: false },
    ]);
    expect(last.next).toEqual({ kind: 'now' });
  });
});
