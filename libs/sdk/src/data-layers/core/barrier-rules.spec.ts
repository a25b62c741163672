import { describe, expect, it } from 'vitest';
import { answerSlot, barrierDecision, barrierInserts, barrierKind, barrierOutcome, ongoingOutcome, slotToRead, type BarrierDecision, type FoundRow } from './barrier-rules.js';
import { ongoing } from './ongoing-answer.js';

const branch = { gid: 'g1', branchId: 'b1', phase: 'try' as const };
const check = { gid: 'g1', branchId: 'check', phase: 'check' as const };

const row = (origin: FoundRow['origin'], answer: FoundRow['answer'] = 'final'): FoundRow => ({ origin, answer });
const run = (storesResult: boolean, takesOverOngoingPhase1 = false): BarrierDecision => ({ kind: 'run', storesResult, takesOverOngoingPhase1 });

describe('barrier rules', () => {
  it('phase 1 takes its own slot; commit its own; rollback the phase-1 slot first (the marker), then its own', () => {
    expect(barrierInserts('phase1')).toEqual([{ slot: 'phase1', origin: 'phase1' }]);
    expect(barrierInserts('commit')).toEqual([{ slot: 'commit', origin: 'commit' }]);
    expect(barrierInserts('rollback')).toEqual([
      { slot: 'phase1', origin: 'rollback' },
      { slot: 'rollback', origin: 'rollback' },
    ]);
  });

  it('each phase keeps its answer in its own slot; the check and a resume keep none', () => {
    expect(answerSlot('phase1')).toBe('phase1');
    expect(answerSlot('commit')).toBe('commit');
    expect(answerSlot('rollback')).toBe('rollback');
    expect(answerSlot('check')).toBeNull();
    expect(answerSlot('resume')).toBeNull();
  });

  it('phase 1: runs and stores its result when its slot was free; replays a finished phase 1 found there; refuses after a rollback marker', () => {
    expect(barrierDecision('phase1', [true], null)).toEqual(run(true));
    expect(slotToRead('phase1', [true])).toBeNull();
    expect(slotToRead('phase1', [false])).toBe('phase1');
    expect(barrierDecision('phase1', [false], row('phase1'))).toEqual({ kind: 'replay' });
    expect(barrierDecision('phase1', [false], row('rollback'))).toEqual({ kind: 'refuse' });
  });

  it('phase 1 that answered ongoing: the same call runs it again and stores what it answers; a rollback marker still refuses', () => {
    expect(barrierDecision('phase1', [false], row('phase1', 'ongoing'))).toEqual(run(true));
    // A rollback that took an ongoing phase 1 over left origin rollback: anti-hanging, as after any rollback.
    expect(barrierDecision('phase1', [false], row('rollback', 'final'))).toEqual({ kind: 'refuse' });
    expect(barrierDecision('phase1', [false], row('rollback', 'ongoing'))).toEqual({ kind: 'refuse' });
  });

  it('commit: runs once, skips duplicates; runs again while it answered ongoing, storing the final answer over the marker', () => {
    expect(barrierDecision('commit', [true], null)).toEqual(run(false));
    expect(slotToRead('commit', [true])).toBeNull();
    expect(slotToRead('commit', [false])).toBe('commit');
    expect(barrierDecision('commit', [false], row('commit'))).toEqual({ kind: 'skip', duplicate: true });
    expect(barrierDecision('commit', [false], row('commit', 'ongoing'))).toEqual(run(true));
  });

  it('rollback: undoes a phase 1 that ran (taking it over if still ongoing), changes nothing when phase 1 never ran (null compensation), skips duplicates', () => {
    expect(barrierDecision('rollback', [false, true], null)).toEqual(run(false, true));
    expect(slotToRead('rollback', [false, true])).toBeNull();
    expect(barrierDecision('rollback', [true, true], null)).toEqual({ kind: 'skip', duplicate: false });
    expect(slotToRead('rollback', [true, true])).toBeNull();
    expect(slotToRead('rollback', [false, false])).toBe('rollback');
    expect(barrierDecision('rollback', [false, false], row('rollback'))).toEqual({ kind: 'skip', duplicate: true });
  });

  it('rollback that answered ongoing: the same call runs the compensation again, storing the final answer over the marker', () => {
    expect(barrierDecision('rollback', [false, false], row('rollback', 'ongoing'))).toEqual(run(true));
  });

  it('answers: what ran, a replayed result, a skip (duplicate or null compensation), the anti-hanging refusal', () => {
    expect(barrierOutcome(branch, run(true), { n: 1 })).toEqual({ kind: 'ok', result: { n: 1 }, duplicate: false, skipped: false });
    expect(barrierOutcome(branch, { kind: 'replay' }, 'first')).toEqual({ kind: 'ok', result: 'first', duplicate: true, skipped: true });
    expect(barrierOutcome(branch, { kind: 'skip', duplicate: true }, 'ignored')).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
    expect(barrierOutcome(branch, { kind: 'skip', duplicate: false }, null)).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: true });
    expect(barrierOutcome(branch, { kind: 'refuse' }, null)).toEqual({
      kind: 'failed',
      message: 'branch b1 of g1 was already rolled back',
      details: { reason: 'rolled_back' },
    });
  });

  it('an ongoing answer keeps its hint, whole and at most an hour; 0 and none are no hint; a negative or NaN one is a bug', () => {
    expect(ongoingOutcome(ongoing())).toEqual({ kind: 'ongoing' });
    expect(ongoingOutcome(ongoing({ retryAfterMs: 2000 }))).toEqual({ kind: 'ongoing', retryAfterMs: 2000 });
    expect(ongoingOutcome(ongoing({ retryAfterMs: 1.2 }))).toEqual({ kind: 'ongoing', retryAfterMs: 2 });
    expect(ongoingOutcome(ongoing({ retryAfterMs: 0 }))).toEqual({ kind: 'ongoing' });
    expect(ongoingOutcome(ongoing({ retryAfterMs: 7 * 24 * 3_600_000 }))).toEqual({ kind: 'ongoing', retryAfterMs: 3_600_000 });
    expect(() => ongoing({ retryAfterMs: -1 })).toThrow(TypeError);
    expect(() => ongoing({ retryAfterMs: Number.NaN })).toThrow(TypeError);
  });

  it("msg's check: takes the phase-1 slot of the local transaction when free (not committed, for good); replays the committed one; refuses again after its own marker", () => {
    expect(barrierInserts('check')).toEqual([{ slot: 'phase1', origin: 'rollback' }]);
    expect(barrierDecision('check', [true], null)).toEqual({ kind: 'refuse' });
    expect(slotToRead('check', [true])).toBeNull();
    expect(slotToRead('check', [false])).toBe('phase1');
    expect(barrierDecision('check', [false], row('phase1'))).toEqual({ kind: 'replay' });
    expect(barrierDecision('check', [false], row('rollback'))).toEqual({ kind: 'refuse' });
    // The local transaction (a phase 1 of the check branch) that comes after the marker is refused.
    expect(barrierDecision('phase1', [false], row('rollback'))).toEqual({ kind: 'refuse' });
    expect(barrierOutcome(check, { kind: 'refuse' }, null)).toEqual({
      kind: 'failed',
      message: 'the local transaction of g1 did not commit, and now never will',
      details: { reason: 'not_committed' },
    });
  });

  it("a workflow's resume keeps no row and always runs", () => {
    expect(barrierInserts('resume')).toEqual([]);
    expect(slotToRead('resume', [])).toBeNull();
    expect(barrierDecision('resume', [], null)).toEqual(run(false));
  });

  it('undo (a local step\'s compensation): takes only the rollback slot, no marker; runs once, skips duplicates, runs again while ongoing', () => {
    expect(barrierInserts('undo')).toEqual([{ slot: 'rollback', origin: 'rollback' }]);
    expect(answerSlot('undo')).toBe('rollback');
    // First call: runs, with no phase 1 to take over (and none to find: it is never a null compensation).
    expect(barrierDecision('undo', [true], null)).toEqual(run(false));
    expect(slotToRead('undo', [true])).toBeNull();
    // A repeat reads its own slot: a duplicate once final, the method again while ongoing.
    expect(slotToRead('undo', [false])).toBe('rollback');
    expect(barrierDecision('undo', [false], row('rollback'))).toEqual({ kind: 'skip', duplicate: true });
    expect(barrierDecision('undo', [false], row('rollback', 'ongoing'))).toEqual(run(true));
    expect(barrierOutcome({ ...branch, phase: 'compensate' }, run(false), { undone: true })).toEqual({ kind: 'ok', result: { undone: true }, duplicate: false, skipped: false });
  });

  it('the kind of a call: its phase\'s, or undo when asked for a rollback phase; undo for any other phase is a bug', () => {
    expect(barrierKind('compensate')).toBe('rollback');
    expect(barrierKind('try', {})).toBe('phase1');
    for (const phase of ['compensate', 'cancel', 'rollback'] as const) expect(barrierKind(phase, { kind: 'undo' })).toBe('undo');
    for (const phase of ['execute', 'try', 'confirm', 'check', 'resume'] as const) expect(() => barrierKind(phase, { kind: 'undo' })).toThrow(TypeError);
  });
});
