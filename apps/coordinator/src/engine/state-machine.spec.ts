import { describe, expect, it } from 'vitest';
import { ErrorCode, GLOBAL_STATUSES, MODES, type BranchStatus, type GlobalStatus, type Mode, type RollbackReason } from '@nest-dtx/protocol';
import type { BranchKind } from './branch-kind.js';
import { MSG_RULES } from './processors/msg.processor.js';
import { SAGA_RULES } from './processors/saga.processor.js';
import { TCC_RULES } from './processors/tcc.processor.js';
import { TWO_PHASE_COMMIT_RULES } from './processors/two-phase-commit.processor.js';
import { branchesAwaitingPhase2, isAllowedMove, transition, type MachineEvent, type MachineTx, type ModeRules } from './state-machine.js';

/**
 * Each mode's rules as its plug-in declares them, and the kind of its branches. Workflow has no
 * plug-in yet: PROTOCOL.md 2 gives it the moves of every mode but saga, which tcc's rules stand for.
 */
const RULES: Record<Mode, ModeRules> = { tcc: TCC_RULES, '2pc': TWO_PHASE_COMMIT_RULES, saga: SAGA_RULES, msg: MSG_RULES, workflow: TCC_RULES };
const KIND: Record<Mode, BranchKind> = { tcc: 'tcc', '2pc': '2pc', saga: 'saga', msg: 'msg', workflow: 'tcc' };

const tx = (mode: Mode, status: GlobalStatus, branches: Record<string, BranchStatus> = {}, reason: RollbackReason | null = null): MachineTx => ({
  rules: RULES[mode],
  status,
  reason,
  branches: Object.entries(branches).map(([branchId, s]) => ({ branchId, status: s, kind: KIND[mode] })),
});

const statusesOf = (t: MachineTx) => Object.fromEntries(t.branches.map((b) => [b.branchId, b.status]));

function ok(result: ReturnType<typeof transition>): MachineTx {
  if (!result.ok) throw new Error(`expected the move to be allowed, got ${result.error}`);
  return result.tx;
}

/** PROTOCOL.md 2: the only moves that ever happen. */
const EXPECTED_MOVES: Record<Mode, [GlobalStatus, GlobalStatus][]> = {
  tcc: [['active', 'committing'], ['committing', 'committed'], ['active', 'rolling_back'], ['rolling_back', 'rolled_back']],
  '2pc': [['active', 'committing'], ['committing', 'committed'], ['active', 'rolling_back'], ['rolling_back', 'rolled_back']],
  saga: [['active', 'committed'], ['active', 'rolling_back'], ['rolling_back', 'rolled_back']],
  msg: [['active', 'committing'], ['committing', 'committed'], ['active', 'rolling_back'], ['rolling_back', 'rolled_back']],
  workflow: [['active', 'committing'], ['committing', 'committed'], ['active', 'rolling_back'], ['rolling_back', 'rolled_back']],
};

describe('isAllowedMove', () => {
  const cases = MODES.flatMap((mode) => GLOBAL_STATUSES.flatMap((from) => GLOBAL_STATUSES.map((to) => [mode, from, to] as const)));

  it.each(cases)('%s: %s -> %s', (mode, from, to) => {
    const expected = EXPECTED_MOVES[mode].some(([f, t]) => f === from && t === to);
    expect(isAllowedMove(RULES[mode], from, to)).toBe(expected);
  });
});

describe.each(['tcc', '2pc'] as const)('%s transitions', (mode) => {
  describe('commit_requested', () => {
    it('moves active with every branch prepared to committing', () => {
      const next = ok(transition(tx(mode, 'active', { a: 'prepared', b: 'prepared' }), { type: 'commit_requested' }));
      expect(next.status).toBe('committing');
      expect(statusesOf(next)).toEqual({ a: 'prepared', b: 'prepared' });
    });

    it('commits a transaction with no branch', () => {
      expect(ok(transition(tx(mode, 'active'), { type: 'commit_requested' })).status).toBe('committing');
    });

    it.each(['failed', 'pending'] as const)('rolls back (branch_failed) with CANNOT_COMMIT when a branch is %s', (bad) => {
      const result = transition(tx(mode, 'active', { a: 'prepared', b: bad }), { type: 'commit_requested' });
      expect(result).toMatchObject({ ok: true, changed: true, error: ErrorCode.CANNOT_COMMIT });
      expect(ok(result)).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
    });

    it.each(['committing', 'committed'] as const)('is an idempotent no-op when %s', (status) => {
      expect(transition(tx(mode, status), { type: 'commit_requested' })).toMatchObject({ ok: true, changed: false });
    });

    it.each(['rolling_back', 'rolled_back'] as const)('is TX_ALREADY_DECIDED when %s', (status) => {
      expect(transition(tx(mode, status), { type: 'commit_requested' })).toEqual({ ok: false, error: ErrorCode.TX_ALREADY_DECIDED });
    });
  });

  describe('rollback_requested', () => {
    it.each(['client', 'admin'] as const)('moves active to rolling_back with reason %s', (reason) => {
      expect(ok(transition(tx(mode, 'active', { a: 'prepared' }), { type: 'rollback_requested', reason }))).toMatchObject({
        status: 'rolling_back',
        reason,
      });
    });

    it.each(['rolling_back', 'rolled_back'] as const)('is an idempotent no-op when %s', (status) => {
      expect(transition(tx(mode, status, {}, 'client'), { type: 'rollback_requested', reason: 'client' })).toMatchObject({ ok: true, changed: false });
    });

    it.each(['committing', 'committed'] as const)('is TX_ALREADY_DECIDED when %s', (status) => {
      expect(transition(tx(mode, status), { type: 'rollback_requested', reason: 'client' })).toEqual({ ok: false, error: ErrorCode.TX_ALREADY_DECIDED });
    });
  });

  describe('deadline_passed', () => {
    it('rolls an active transaction back with reason timeout', () => {
      expect(ok(transition(tx(mode, 'active', { a: 'prepared' }), { type: 'deadline_passed' }))).toMatchObject({ status: 'rolling_back', reason: 'timeout' });
    });

    it.each(['committing', 'committed', 'rolling_back', 'rolled_back'] as const)('changes nothing when %s', (status) => {
      expect(transition(tx(mode, status), { type: 'deadline_passed' })).toMatchObject({ ok: true, changed: false });
    });
  });

  describe('branch_added', () => {
    it('adds a pending branch to an active transaction', () => {
      expect(statusesOf(ok(transition(tx(mode, 'active', { a: 'prepared' }), { type: 'branch_added', branchId: 'b', kind: mode })))).toEqual({ a: 'prepared', b: 'pending' });
    });

    it('is a no-op for a branch that exists', () => {
      expect(transition(tx(mode, 'active', { a: 'prepared' }), { type: 'branch_added', branchId: 'a', kind: mode })).toMatchObject({ ok: true, changed: false });
    });

    it.each(['committing', 'committed', 'rolling_back', 'rolled_back'] as const)('is TX_NOT_ACTIVE when %s', (status) => {
      expect(transition(tx(mode, status), { type: 'branch_added', branchId: 'x', kind: mode })).toEqual({ ok: false, error: ErrorCode.TX_NOT_ACTIVE });
    });
  });

  describe('phase1_answered', () => {
    it('maps ok to prepared, failed to failed, and leaves unknown pending', () => {
      const next = ok(
        transition(tx(mode, 'active', { a: 'pending', b: 'pending', c: 'pending' }), {
          type: 'phase1_answered',
          answers: [
            { branchId: 'a', answer: 'ok' },
            { branchId: 'b', answer: 'failed' },
            { branchId: 'c', answer: 'unknown' },
          ],
        }),
      );
      expect(statusesOf(next)).toEqual({ a: 'prepared', b: 'failed', c: 'pending' });
      expect(next.status).toBe('active');
    });

    it('ignores answers for branches no longer pending and for unknown branches', () => {
      const result = transition(tx(mode, 'active', { a: 'prepared' }), {
        type: 'phase1_answered',
        answers: [
          { branchId: 'a', answer: 'failed' },
          { branchId: 'ghost', answer: 'ok' },
        ],
      });
      expect(result).toMatchObject({ ok: true, changed: false });
    });

    it.each(['committing', 'committed', 'rolling_back', 'rolled_back'] as const)('ignores late answers when %s', (status) => {
      expect(transition(tx(mode, status, { a: 'pending' }), { type: 'phase1_answered', answers: [{ branchId: 'a', answer: 'ok' }] })).toMatchObject({
        ok: true,
        changed: false,
      });
    });
  });

  describe('phase1_finished (one-shot)', () => {
    it('commits when every branch is prepared', () => {
      expect(ok(transition(tx(mode, 'active', { a: 'prepared', b: 'prepared' }), { type: 'phase1_finished' })).status).toBe('committing');
    });

    it.each(['failed', 'pending'] as const)('rolls back (branch_failed) when a branch is %s', (bad) => {
      expect(ok(transition(tx(mode, 'active', { a: 'prepared', b: bad }), { type: 'phase1_finished' }))).toMatchObject({
        status: 'rolling_back',
        reason: 'branch_failed',
      });
    });
  });

  describe('phase2_answered', () => {
    it('commits branch by branch and the transaction when the last one answered ok', () => {
      const start = tx(mode, 'committing', { a: 'prepared', b: 'prepared' });
      const half = ok(transition(start, { type: 'phase2_answered', answers: [{ branchId: 'a', answer: 'ok' }, { branchId: 'b', answer: 'transient' }] }));
      expect(half.status).toBe('committing');
      expect(statusesOf(half)).toEqual({ a: 'committed', b: 'prepared' });
      const done = ok(transition(half, { type: 'phase2_answered', answers: [{ branchId: 'b', answer: 'ok' }] }));
      expect(done.status).toBe('committed');
      expect(statusesOf(done)).toEqual({ a: 'committed', b: 'committed' });
    });

    it('rolls back every branch whatever its phase-1 outcome', () => {
      const start = tx(mode, 'rolling_back', { a: 'prepared', b: 'failed', c: 'pending' }, 'branch_failed');
      const answers = ['a', 'b', 'c'].map((branchId) => ({ branchId, answer: 'ok' as const }));
      const done = ok(transition(start, { type: 'phase2_answered', answers }));
      expect(done).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
      expect(statusesOf(done)).toEqual({ a: 'rolled_back', b: 'rolled_back', c: 'rolled_back' });
    });

    it.each(['transient', 'refused'] as const)('changes nothing on a %s answer', (answer) => {
      expect(transition(tx(mode, 'committing', { a: 'prepared' }), { type: 'phase2_answered', answers: [{ branchId: 'a', answer }] })).toMatchObject({
        ok: true,
        changed: false,
      });
    });

    it.each(['active', 'committed', 'rolled_back'] as const)('is ignored when %s', (status) => {
      expect(transition(tx(mode, status, { a: 'prepared' }), { type: 'phase2_answered', answers: [{ branchId: 'a', answer: 'ok' }] })).toMatchObject({
        ok: true,
        changed: false,
      });
    });

    it('finishes a decided transaction without branches', () => {
      expect(ok(transition(tx(mode, 'committing'), { type: 'phase2_answered', answers: [] })).status).toBe('committed');
    });
  });

  it('refuses saga-only events', () => {
    expect(transition(tx(mode, 'active', { a: 'pending' }), { type: 'steps_answered', answers: [{ branchId: 'a', answer: 'ok' }] })).toEqual({
      ok: false,
      error: ErrorCode.WRONG_MODE,
    });
  });
});

describe('saga transitions', () => {
  it('commits directly from active when every step committed (its commit point)', () => {
    const next = ok(
      transition(tx('saga', 'active', { s1: 'committed', s2: 'pending' }), { type: 'steps_answered', answers: [{ branchId: 's2', answer: 'ok' }] }),
    );
    expect(next.status).toBe('committed');
  });

  it('stays active while steps remain, and on unknown outcomes', () => {
    const next = ok(
      transition(tx('saga', 'active', { s1: 'pending', s2: 'pending', s3: 'pending' }), {
        type: 'steps_answered',
        answers: [{ branchId: 's1', answer: 'ok' }, { branchId: 's2', answer: 'unknown' }],
      }),
    );
    expect(next.status).toBe('active');
    expect(statusesOf(next)).toEqual({ s1: 'committed', s2: 'pending', s3: 'pending' });
  });

  it('turns to compensation (branch_failed) when a step is refused', () => {
    const next = ok(
      transition(tx('saga', 'active', { s1: 'committed', s2: 'pending' }), { type: 'steps_answered', answers: [{ branchId: 's2', answer: 'failed' }] }),
    );
    expect(next).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
    expect(statusesOf(next)).toEqual({ s1: 'committed', s2: 'failed' });
  });

  it.each<[MachineEvent]>([
    [{ type: 'commit_requested' }],
    [{ type: 'rollback_requested', reason: 'client' }],
    [{ type: 'branch_added', branchId: 'x', kind: 'saga' }],
    [{ type: 'phase1_finished' }],
    [{ type: 'phase1_answered', answers: [] }],
  ])('refuses the tcc/2pc client event %j with WRONG_MODE', (event) => {
    expect(transition(tx('saga', 'active', { s1: 'pending' }), event)).toEqual({ ok: false, error: ErrorCode.WRONG_MODE });
  });

  it('accepts an operator rollback (reason admin) and the deadline (reason timeout)', () => {
    expect(ok(transition(tx('saga', 'active'), { type: 'rollback_requested', reason: 'admin' }))).toMatchObject({ status: 'rolling_back', reason: 'admin' });
    expect(ok(transition(tx('saga', 'active'), { type: 'deadline_passed' }))).toMatchObject({ status: 'rolling_back', reason: 'timeout' });
  });

  it('compensates failed and pending steps too, then ends rolled_back', () => {
    const start = tx('saga', 'rolling_back', { s1: 'committed', s2: 'failed', s3: 'pending' }, 'branch_failed');
    const answers = ['s1', 's2', 's3'].map((branchId) => ({ branchId, answer: 'ok' as const }));
    expect(ok(transition(start, { type: 'phase2_answered', answers })).status).toBe('rolled_back');
  });
});

describe('branchesAwaitingPhase2', () => {
  it('lists the branches a decided transaction still has to reach', () => {
    expect(branchesAwaitingPhase2(tx('tcc', 'committing', { a: 'committed', b: 'prepared' })).map((b) => b.branchId)).toEqual(['b']);
    expect(branchesAwaitingPhase2(tx('tcc', 'rolling_back', { a: 'rolled_back', b: 'failed', c: 'pending' })).map((b) => b.branchId)).toEqual(['b', 'c']);
  });

  it.each(['active', 'committed', 'rolled_back'] as const)('is empty when %s', (status) => {
    expect(branchesAwaitingPhase2(tx('tcc', status, { a: 'prepared' }))).toEqual([]);
  });
});

describe('random event sequences (seeded)', () => {
  // A small deterministic PRNG (mulberry32), so a failure reproduces.
  function prng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('never makes a move PROTOCOL.md 2 forbids, and never leaves a terminal status (2,000 sequences)', () => {
    const random = prng(20261122);
    const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const branchIds = ['a', 'b', 'c'];
    for (let run = 0; run < 2_000; run++) {
      const mode = pick(MODES);
      let current = tx(mode, 'active', Object.fromEntries(branchIds.slice(0, 1 + Math.floor(random() * 3)).map((id) => [id, 'pending' as const])));
      for (let step = 0; step < 12; step++) {
        const branchId = pick(branchIds);
        const event = pick<MachineEvent>([
          { type: 'branch_added', branchId, kind: KIND[mode] },
          { type: 'phase1_answered', answers: [{ branchId, answer: pick(['ok', 'failed', 'unknown'] as const) }] },
          { type: 'phase1_finished' },
          { type: 'commit_requested' },
          { type: 'rollback_requested', reason: pick(['client', 'admin'] as const) },
          { type: 'deadline_passed' },
          { type: 'phase2_answered', answers: branchIds.map((id) => ({ branchId: id, answer: pick(['ok', 'transient', 'refused'] as const) })) },
          { type: 'steps_answered', answers: [{ branchId, answer: pick(['ok', 'failed', 'unknown'] as const) }] },
        ]);
        const result = transition(current, event);
        if (!result.ok) continue;
        const next = result.tx;
        if (next.status !== current.status) expect(isAllowedMove(RULES[mode], current.status, next.status)).toBe(true);
        if (current.status === 'committed' || current.status === 'rolled_back') expect(next.status).toBe(current.status);
        if (next.status === 'rolling_back' || next.status === 'rolled_back') expect(next.reason).not.toBeNull();
        current = next;
      }
    }
  });
});

describe('long-running answers (PROTOCOL.md 3.6)', () => {
  const waiting = (t: MachineTx) => Object.fromEntries(t.branches.map((b) => [b.branchId, b.waiting ?? false]));
  const withWaiting = (t: MachineTx, ids: string[]): MachineTx => ({ ...t, branches: t.branches.map((b) => ({ ...b, waiting: ids.includes(b.branchId) })) });

  describe.each(['tcc', '2pc'] as const)('%s', (mode) => {
    it('phase1_answered: ongoing leaves a branch pending and waiting; a final answer ends the wait; no answer changes nothing', () => {
      const start = withWaiting(tx(mode, 'active', { a: 'pending', b: 'pending', c: 'pending' }), ['c']);
      const next = ok(
        transition(start, {
          type: 'phase1_answered',
          answers: [
            { branchId: 'a', answer: 'ongoing' },
            { branchId: 'b', answer: 'unknown' },
            { branchId: 'c', answer: 'ok' },
          ],
        }),
      );
      expect(statusesOf(next)).toEqual({ a: 'pending', b: 'pending', c: 'prepared' });
      expect(waiting(next)).toEqual({ a: true, b: false, c: false });
      // A branch that accepted its call and then gave no answer is still working on it.
      expect(waiting(ok(transition(next, { type: 'phase1_answered', answers: [{ branchId: 'a', answer: 'unknown' }] })))).toMatchObject({ a: true });
      // Ongoing again changes nothing.
      expect(transition(next, { type: 'phase1_answered', answers: [{ branchId: 'a', answer: 'ongoing' }] })).toMatchObject({ ok: true, changed: false });
    });

    it('phase1_finished: waits while a branch still works on its answer and every other is prepared', () => {
      const start = withWaiting(tx(mode, 'active', { a: 'prepared', b: 'pending' }), ['b']);
      expect(transition(start, { type: 'phase1_finished' })).toMatchObject({ ok: true, changed: false, tx: { status: 'active' } });
    });

    it.each([
      ['a refusal', { a: 'failed', b: 'pending' }],
      ['a branch with no answer at all', { a: 'pending', b: 'pending', c: 'prepared' }],
    ] as const)('phase1_finished: rolls back on %s though another branch still waits, and every wait ends', (_name, branches) => {
      const start = withWaiting(tx(mode, 'active', branches), ['b']);
      const next = ok(transition(start, { type: 'phase1_finished' }));
      expect(next).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
      expect(Object.values(waiting(next)).every((w) => !w)).toBe(true);
    });

    it('commit_requested while a branch waits: rolled back with CANNOT_COMMIT (3.3 unchanged)', () => {
      const result = transition(withWaiting(tx(mode, 'active', { a: 'prepared', b: 'pending' }), ['b']), { type: 'commit_requested' });
      expect(result).toMatchObject({ ok: true, error: ErrorCode.CANNOT_COMMIT, tx: { status: 'rolling_back', reason: 'branch_failed' } });
    });

    it('the deadline rolls back a transaction whose branch still waits, and ends the wait', () => {
      const next = ok(transition(withWaiting(tx(mode, 'active', { a: 'pending' }), ['a']), { type: 'deadline_passed' }));
      expect(next).toMatchObject({ status: 'rolling_back', reason: 'timeout' });
      expect(waiting(next)).toEqual({ a: false });
    });

    it('phase2_answered: ongoing leaves the branch owed and waiting; ok delivers it and ends the wait', () => {
      const start = tx(mode, 'committing', { a: 'prepared', b: 'prepared' });
      const half = ok(transition(start, { type: 'phase2_answered', answers: [{ branchId: 'a', answer: 'ongoing' }, { branchId: 'b', answer: 'ok' }] }));
      expect(half.status).toBe('committing');
      expect(statusesOf(half)).toEqual({ a: 'prepared', b: 'committed' });
      expect(waiting(half)).toEqual({ a: true, b: false });
      const done = ok(transition(half, { type: 'phase2_answered', answers: [{ branchId: 'a', answer: 'ok' }] }));
      expect(done.status).toBe('committed');
      expect(waiting(done)).toEqual({ a: false, b: false });
    });
  });

  it('saga: a step answered ongoing waits and the saga stays active; once it answers ok the saga commits', () => {
    const waits = ok(transition(tx('saga', 'active', { s1: 'committed', s2: 'pending' }), { type: 'steps_answered', answers: [{ branchId: 's2', answer: 'ongoing' }] }));
    expect(waits.status).toBe('active');
    expect(waiting(waits)).toEqual({ s1: false, s2: true });
    expect(ok(transition(waits, { type: 'steps_answered', answers: [{ branchId: 's2', answer: 'ok' }] })).status).toBe('committed');
  });

  it('saga: a step refused while another waits compensates both, and ends the wait', () => {
    const start = withWaiting(tx('saga', 'active', { s1: 'pending', s2: 'pending' }), ['s1']);
    const next = ok(transition(start, { type: 'steps_answered', answers: [{ branchId: 's2', answer: 'failed' }] }));
    expect(next).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
    expect(waiting(next)).toEqual({ s1: false, s2: false });
  });
});
