import { describe, expect, it } from 'vitest';
import { barrierDecision, barrierInserts, barrierOutcome, needsPhase1Origin } from './barrier-rules.js';

const branch = { gid: 'g1', branchId: 'b1', phase: 'try' as const };
const check = { gid: 'g1', branchId: 'check', phase: 'check' as const };

describe('barrier rules', () => {
  it('phase 1 takes its own slot; commit its own; rollback the phase-1 slot first (the marker), then its own', () => {
    expect(barrierInserts('phase1')).toEqual([{ slot: 'phase1', origin: 'phase1' }]);
    expect(barrierInserts('commit')).toEqual([{ slot: 'commit', origin: 'commit' }]);
    expect(barrierInserts('rollback')).toEqual([
      { slot: 'phase1', origin: 'rollback' },
      { slot: 'rollback', origin: 'rollback' },
    ]);
  });

  it('phase 1: runs and stores its result when its slot was free; replays a phase 1 found there; refuses after a rollback marker', () => {
    expect(barrierDecision('phase1', [true], null)).toEqual({ kind: 'run', storesResult: true });
    expect(needsPhase1Origin('phase1', [true])).toBe(false);
    expect(needsPhase1Origin('phase1', [false])).toBe(true);
    expect(barrierDecision('phase1', [false], 'phase1')).toEqual({ kind: 'replay' });
    expect(barrierDecision('phase1', [false], 'rollback')).toEqual({ kind: 'refuse' });
  });

  it('commit: runs once, skips duplicates', () => {
    expect(barrierDecision('commit', [true], null)).toEqual({ kind: 'run', storesResult: false });
    expect(barrierDecision('commit', [false], null)).toEqual({ kind: 'skip', duplicate: true });
    expect(needsPhase1Origin('commit', [false])).toBe(false);
  });

  it('rollback: undoes a phase 1 that ran, changes nothing when phase 1 never ran (null compensation), skips duplicates', () => {
    expect(barrierDecision('rollback', [false, true], null)).toEqual({ kind: 'run', storesResult: false });
    expect(barrierDecision('rollback', [true, true], null)).toEqual({ kind: 'skip', duplicate: false });
    expect(barrierDecision('rollback', [false, false], null)).toEqual({ kind: 'skip', duplicate: true });
    expect(needsPhase1Origin('rollback', [false, true])).toBe(false);
  });

  it('answers: what ran, a replayed result, a skip (duplicate or null compensation), the anti-hanging refusal', () => {
    expect(barrierOutcome(branch, { kind: 'run', storesResult: true }, { n: 1 })).toEqual({ kind: 'ok', result: { n: 1 }, duplicate: false, skipped: false });
    expect(barrierOutcome(branch, { kind: 'replay' }, 'first')).toEqual({ kind: 'ok', result: 'first', duplicate: true, skipped: true });
    expect(barrierOutcome(branch, { kind: 'skip', duplicate: true }, 'ignored')).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
    expect(barrierOutcome(branch, { kind: 'skip', duplicate: false }, null)).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: true });
    expect(barrierOutcome(branch, { kind: 'refuse' }, null)).toEqual({
      kind: 'failed',
      message: 'branch b1 of g1 was already rolled back',
      details: { reason: 'rolled_back' },
    });
  });

  it("msg's check: takes the phase-1 slot of the local transaction when free (not committed, for good); replays the committed one; refuses again after its own marker", () => {
    expect(barrierInserts('check')).toEqual([{ slot: 'phase1', origin: 'rollback' }]);
    expect(barrierDecision('check', [true], null)).toEqual({ kind: 'refuse' });
    expect(needsPhase1Origin('check', [true])).toBe(false);
    expect(needsPhase1Origin('check', [false])).toBe(true);
    expect(barrierDecision('check', [false], 'phase1')).toEqual({ kind: 'replay' });
    expect(barrierDecision('check', [false], 'rollback')).toEqual({ kind: 'refuse' });
    // The local transaction (a phase 1 of the check branch) that comes after the marker is refused.
    expect(barrierDecision('phase1', [false], 'rollback')).toEqual({ kind: 'refuse' });
    expect(barrierOutcome(check, { kind: 'refuse' }, null)).toEqual({
      kind: 'failed',
      message: 'the local transaction of g1 did not commit, and now never will',
      details: { reason: 'not_committed' },
    });
  });
});
