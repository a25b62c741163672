// The web console's history helpers (apps/coordinator/console/history.js): a browser module,
// tested here because it is pure.
import { describe, expect, it } from 'vitest';
import type { Json } from '@nest-dtx/protocol';
import { phaseAttempts, repeatRuns } from '../../console/history.js';

interface Event {
  type: string;
  branchId: string | null;
  detail: Json;
}

const call = (branchId: string, phase: string, outcome = 'transient'): Event => ({ type: 'call', branchId, detail: { phase, outcome, attempt: 0 } });
const other = (type: string): Event => ({ type, branchId: null, detail: {} });

describe('phaseAttempts', () => {
  it('counts the calls of each branch in each phase from 1, and gives other events none', () => {
    const events = [
      other('created'),
      call('b1', 'try', 'ok'),
      call('b2', 'try', 'ok'),
      other('status'),
      call('b1', 'confirm', 'ok'),
      call('b2', 'confirm'),
      call('b2', 'confirm'),
      call('b2', 'confirm', 'ok'),
    ];
    expect(phaseAttempts(events)).toEqual([null, 1, 1, null, 1, 1, 2, 3]);
  });

  it('starts again in a new phase, even for a branch whose phase 1 took several calls', () => {
    expect(phaseAttempts([call('s1', 'execute'), call('s1', 'execute', 'failed'), call('s1', 'compensate'), call('s1', 'compensate', 'ok')])).toEqual([1, 2, 1, 2]);
  });

  it('ignores the stored detail.attempt, the branch call count over every phase', () => {
    const first: Event = { type: 'call', branchId: 'b1', detail: { phase: 'confirm', outcome: 'ok', attempt: 2 } };
    expect(phaseAttempts([first])).toEqual([1]);
  });
});

describe('repeatRuns', () => {
  it('folds the calls of a branch in a phase with one outcome into one run, where the first is', () => {
    const events = [other('created'), call('b1', 'try', 'ok'), other('status'), ...Array.from({ length: 61 }, () => call('b1', 'confirm')), call('b1', 'confirm', 'ok'), other('status')];
    const runs = repeatRuns(events);
    expect(runs.map((r) => r.length)).toEqual([1, 1, 1, 61, 1, 1]);
    expect(runs[3]).toEqual(Array.from({ length: 61 }, (_, i) => 3 + i));
  });

  it('keeps two failing branches of one round each in its own run, though their calls alternate', () => {
    const rounds = Array.from({ length: 4 }, () => [call('b1', 'confirm'), call('b2', 'confirm')]).flat();
    expect(repeatRuns(rounds)).toEqual([
      [0, 2, 4, 6],
      [1, 3, 5, 7],
    ]);
  });

  it('ends a run at any other event, and at another outcome of the same branch and phase', () => {
    const events = [call('b1', 'confirm'), call('b1', 'confirm'), other('attention'), call('b1', 'confirm'), call('b1', 'confirm', 'failed'), call('b1', 'confirm')];
    expect(repeatRuns(events)).toEqual([[0, 1], [2], [3], [4], [5]]);
  });

  it('never joins calls of another phase, nor of another branch', () => {
    expect(repeatRuns([call('b1', 'try'), call('b1', 'cancel'), call('b2', 'cancel'), call('b1', 'cancel')])).toEqual([[0], [1, 3], [2]]);
  });

  it('is one run per event for a history without repeats, and nothing for none', () => {
    expect(repeatRuns([other('created'), call('b1', 'try', 'ok'), other('status')])).toEqual([[0], [1], [2]]);
    expect(repeatRuns([])).toEqual([]);
  });
});
