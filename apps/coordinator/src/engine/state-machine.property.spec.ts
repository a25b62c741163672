/**
 * Property-based check (fast-check) of the state machine against a small reference model of
 * PROTOCOL.md 2, 3.3 and 3.6, over random interleavings of client calls, participant answers
 * (ongoing ones among them), deadlines and crashes (a crash loses whatever was decided but not
 * yet written).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type BranchMode, type BranchStatus, type GlobalStatus, type RollbackReason } from '@nest-dtx/protocol';
import { MSG_RULES } from './processors/msg.processor.js';
import { SAGA_RULES } from './processors/saga.processor.js';
import { TCC_RULES } from './processors/tcc.processor.js';
import { TWO_PHASE_COMMIT_RULES } from './processors/two-phase-commit.processor.js';
import { isAllowedMove, transition, type MachineEvent, type MachineTx, type ModeRules } from './state-machine.js';

/** Each mode's rules as its plug-in declares them; every branch of these modes is of its mode's kind. */
const RULES: Record<BranchMode, ModeRules> = { tcc: TCC_RULES, '2pc': TWO_PHASE_COMMIT_RULES, saga: SAGA_RULES, msg: MSG_RULES };

/** `waiting`: the branches whose phase in progress answered ongoing and had no final answer since (PROTOCOL.md 3.6). */
type Model = { mode: BranchMode; status: GlobalStatus; reason: RollbackReason | null; branches: Record<string, BranchStatus>; waiting: Record<string, boolean> };

const terminal = (s: GlobalStatus) => s === 'committed' || s === 'rolled_back';
const every = (m: Model, s: BranchStatus) => Object.values(m.branches).every((b) => b === s);

/** The protocol, written again as plainly as possible: the oracle. Returns an error code or the next model. */
function reference(m: Model, e: MachineEvent): Model | ErrorCode {
  const next = referenceMove(m, e);
  // A new status is a new phase for every branch: no wait outlives it.
  if (typeof next !== 'string' && next.status !== m.status) next.waiting = Object.fromEntries(Object.keys(next.branches).map((b) => [b, false]));
  return next;
}

/** A phase-1 answer (tcc/2pc, or a saga step) to a pending branch: final ones end its wait, ongoing starts it, none changes nothing. */
function answerPhase1(next: Model, branchId: string, answer: string, success: BranchStatus): void {
  if (next.branches[branchId] !== 'pending') return;
  if (answer === 'ongoing') next.waiting[branchId] = true;
  else if (answer === 'ok' || answer === 'failed') {
    next.branches[branchId] = answer === 'ok' ? success : 'failed';
    next.waiting[branchId] = false;
  }
}

function referenceMove(m: Model, e: MachineEvent): Model | ErrorCode {
  const next: Model = { ...m, branches: { ...m.branches }, waiting: { ...m.waiting } };
  const saga = m.mode === 'saga';
  const msg = m.mode === 'msg';
  switch (e.type) {
    case 'branch_added':
      if (saga || msg) return ErrorCode.WRONG_MODE;
      if (m.status !== 'active') return ErrorCode.TX_NOT_ACTIVE;
      if (!(e.branchId in next.branches)) {
        next.branches[e.branchId] = 'pending';
        next.waiting[e.branchId] = false;
      }
      return next;
    case 'phase1_answered':
      if (saga || msg) return ErrorCode.WRONG_MODE;
      if (m.status === 'active') for (const a of e.answers) answerPhase1(next, a.branchId, a.answer, 'prepared');
      return next;
    case 'phase1_finished': {
      if (m.status !== 'active') return next;
      if (saga || msg) return ErrorCode.WRONG_MODE;
      if (every(m, 'prepared')) return { ...next, status: 'committing' };
      // Only branches still waiting for their final answer keep the decision open; a refusal or no answer at all rolls back.
      const open = Object.entries(m.branches).every(([b, s]) => s === 'prepared' || (s === 'pending' && m.waiting[b]));
      return open ? next : { ...next, status: 'rolling_back', reason: 'branch_failed' };
    }
    case 'commit_requested':
      if (saga) return ErrorCode.WRONG_MODE;
      if (m.status === 'rolling_back' || m.status === 'rolled_back') return ErrorCode.TX_ALREADY_DECIDED;
      if (m.status !== 'active') return next;
      return every(m, 'prepared') ? { ...next, status: 'committing' } : { ...next, status: 'rolling_back', reason: 'branch_failed' };
    case 'rollback_requested':
      if (saga && e.reason === 'client') return ErrorCode.WRONG_MODE;
      if (m.status === 'committing' || m.status === 'committed') return ErrorCode.TX_ALREADY_DECIDED;
      return m.status === 'active' ? { ...next, status: 'rolling_back', reason: e.reason } : next;
    case 'deadline_passed':
      // A message is asked (check_answered), never rolled back at its deadline.
      if (msg) return next;
      return m.status === 'active' ? { ...next, status: 'rolling_back', reason: 'timeout' } : next;
    case 'check_answered':
      if (!msg) return ErrorCode.WRONG_MODE;
      if (m.status !== 'active' || e.answer === 'unknown') return next;
      return e.answer === 'committed' ? { ...next, status: 'committing' } : { ...next, status: 'rolling_back', reason: 'timeout' };
    case 'phase2_answered': {
      if (m.status !== 'committing' && m.status !== 'rolling_back') return next;
      const done: BranchStatus = m.status === 'committing' ? 'committed' : 'rolled_back';
      for (const a of e.answers) {
        if (!(a.branchId in next.branches) || next.branches[a.branchId] === done) continue;
        if (a.answer === 'ok') {
          next.branches[a.branchId] = done;
          next.waiting[a.branchId] = false;
        } else if (a.answer === 'ongoing') next.waiting[a.branchId] = true;
      }
      return every(next, done) ? { ...next, status: done } : next;
    }
    case 'steps_answered': {
      if (!saga) return ErrorCode.WRONG_MODE;
      if (m.status !== 'active') return next;
      for (const a of e.answers) answerPhase1(next, a.branchId, a.answer, 'committed');
      if (Object.values(next.branches).includes('failed')) return { ...next, status: 'rolling_back', reason: 'branch_failed' };
      return every(next, 'committed') ? { ...next, status: 'committed' } : next;
    }
  }
}

const toMachine = (m: Model): MachineTx => ({
  rules: RULES[m.mode],
  status: m.status,
  reason: m.reason,
  branches: Object.entries(m.branches).map(([branchId, status]) => ({ branchId, status, kind: m.mode, waiting: m.waiting[branchId] })),
});
const fromMachine = (t: MachineTx, mode: BranchMode): Model => ({
  mode,
  status: t.status,
  reason: t.reason,
  branches: Object.fromEntries(t.branches.map((b) => [b.branchId, b.status])),
  waiting: Object.fromEntries(t.branches.map((b) => [b.branchId, b.waiting ?? false])),
});

const branchId = fc.constantFrom('a', 'b', 'c');
/** One answer per branch in a round, as the engine sends at most one call per branch per round. */
const answers = <A extends string>(...kinds: A[]) =>
  fc.uniqueArray(fc.record({ branchId, answer: fc.constantFrom(...kinds) }), { maxLength: 3, selector: (a) => a.branchId });
const event: fc.Arbitrary<MachineEvent> = fc.oneof(
  fc.record({ type: fc.constant('branch_added' as const), branchId, kind: fc.constant<BranchMode>('tcc') }),
  fc.record({ type: fc.constant('phase1_answered' as const), answers: answers('ok', 'failed', 'ongoing', 'unknown') }),
  fc.record({ type: fc.constant('phase1_finished' as const) }),
  fc.record({ type: fc.constant('commit_requested' as const) }),
  fc.record({ type: fc.constant('rollback_requested' as const), reason: fc.constantFrom('client' as const, 'admin' as const) }),
  fc.record({ type: fc.constant('deadline_passed' as const) }),
  fc.record({ type: fc.constant('phase2_answered' as const), answers: answers('ok', 'ongoing', 'transient', 'refused') }),
  fc.record({ type: fc.constant('steps_answered' as const), answers: answers('ok', 'failed', 'ongoing', 'unknown') }),
  fc.record({ type: fc.constant('check_answered' as const), answer: fc.constantFrom('committed' as const, 'not_committed' as const, 'unknown' as const) }),
);
/** Each step: an event, and whether the instance crashes before writing what it decided. */
const step = fc.record({ event, crashBeforeWrite: fc.boolean() });
const start = fc.record({
  mode: fc.constantFrom<BranchMode>('tcc', '2pc', 'saga', 'msg'),
  branches: fc.uniqueArray(branchId, { maxLength: 3 }),
});

describe('state machine vs reference model (fast-check)', () => {
  it('agrees with the model on every event, and what is durable only ever moves as PROTOCOL.md 2 allows', () => {
    fc.assert(
      fc.property(start, fc.array(step, { maxLength: 30 }), ({ mode, branches }, steps) => {
        // A message's branches are prepared from the start (ready to deliver); the others' pending.
        const initial: BranchStatus = mode === 'msg' ? 'prepared' : 'pending';
        let durable: Model = {
          mode,
          status: 'active',
          reason: null,
          branches: Object.fromEntries(branches.map((b) => [b, initial])),
          waiting: Object.fromEntries(branches.map((b) => [b, false])),
        };
        const history: GlobalStatus[] = [durable.status];
        for (const { event: e, crashBeforeWrite } of steps) {
          // A branch added to a transaction is of its mode's kind.
          const actual = transition(toMachine(durable), e.type === 'branch_added' ? { ...e, kind: mode } : e);
          const expected = reference(durable, e);
          if (typeof expected === 'string') {
            expect(actual).toEqual({ ok: false, error: expected });
            continue;
          }
          expect(actual.ok).toBe(true);
          if (!actual.ok) continue;
          expect(fromMachine(actual.tx, mode)).toEqual(expected);
          if (crashBeforeWrite) continue; // lost: the durable state is what recovery will find
          const before = durable.status;
          durable = fromMachine(actual.tx, mode);
          if (durable.status !== before) {
            expect(isAllowedMove(RULES[mode], before, durable.status)).toBe(true);
            history.push(durable.status);
          }
          // A decision, once durable, is never reversed; a terminal status never changes.
          if (terminal(before)) expect(durable.status).toBe(before);
          if (durable.status === 'committing' || durable.status === 'committed') expect(history).not.toContain('rolling_back');
          if (durable.status === 'rolling_back' || durable.status === 'rolled_back') expect(history).not.toContain('committing');
          // Atomicity at the end: every branch committed, or every branch rolled back.
          if (durable.status === 'committed') expect(every(durable, 'committed')).toBe(true);
          if (durable.status === 'rolled_back') expect(every(durable, 'rolled_back')).toBe(true);
          if (durable.status === 'committing' && mode !== 'saga') {
            expect(Object.values(durable.branches).every((b) => b === 'prepared' || b === 'committed')).toBe(true);
          }
          // Only a branch whose phase is in progress waits: never one that is done, never in a terminal transaction.
          for (const [b, waits] of Object.entries(durable.waiting)) {
            if (!waits) continue;
            expect(terminal(durable.status)).toBe(false);
            if (durable.status === 'active') expect(durable.branches[b]).toBe('pending');
            else expect(durable.branches[b]).not.toBe(durable.status === 'committing' ? 'committed' : 'rolled_back');
          }
        }
      }),
      { numRuns: 3_000, seed: 20261122 },
    );
  });
});
