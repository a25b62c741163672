/**
 * What a participant's reported outcome (PROTOCOL.md 3.6) comes to for a branch as the
 * transaction holds it: applied (its phase is in progress), a repeat, or not in progress.
 */
import { describe, expect, it } from 'vitest';
import type { BranchStatus, GlobalStatus, Phase } from '@nest-dtx/protocol';
import { SAGA_RULES } from './processors/saga.processor.js';
import { TCC_RULES } from './processors/tcc.processor.js';
import { TWO_PHASE_COMMIT_RULES } from './processors/two-phase-commit.processor.js';
import { readBranchReport, readCheckReport, reportedOutcome, type ReportReading } from './reported-outcome.js';
import { isUnstorableAnswer } from './storable-answer.js';

const tcc = (txStatus: GlobalStatus, status: BranchStatus, phase: Phase, outcome: 'ok' | 'failed' = 'ok', sent = true): ReportReading =>
  readBranchReport(TCC_RULES, txStatus, { kind: 'tcc', status, sent }, { phase, outcome });

describe('readBranchReport', () => {
  it('phase 1: in progress for a pending branch of an active transaction once its call was sent', () => {
    expect(tcc('active', 'pending', 'try')).toBe('apply');
    expect(tcc('active', 'pending', 'try', 'failed')).toBe('apply');
    expect(tcc('active', 'pending', 'try', 'ok', false)).toBe('not_in_progress');
  });

  it('phase 1: a repeat when the branch shows that answer; anything else is not in progress', () => {
    expect(tcc('active', 'prepared', 'try')).toBe('repeat');
    expect(tcc('committing', 'prepared', 'try')).toBe('repeat');
    expect(tcc('committed', 'committed', 'try')).toBe('repeat');
    expect(tcc('rolling_back', 'failed', 'try', 'failed')).toBe('repeat');
    expect(tcc('active', 'prepared', 'try', 'failed')).toBe('not_in_progress');
    expect(tcc('rolled_back', 'rolled_back', 'try')).toBe('not_in_progress');
    // Rolled back at the deadline while it waited: its try is over, whatever it says now.
    expect(tcc('rolling_back', 'pending', 'try')).toBe('not_in_progress');
  });

  it('phase 2: in progress from the decision until the branch has it; a 409 there (failed) applies while in progress', () => {
    expect(tcc('committing', 'prepared', 'confirm')).toBe('apply');
    expect(tcc('committing', 'prepared', 'confirm', 'failed')).toBe('apply');
    expect(tcc('rolling_back', 'pending', 'cancel')).toBe('apply');
    expect(tcc('committing', 'committed', 'confirm')).toBe('repeat');
    expect(tcc('committed', 'committed', 'confirm')).toBe('repeat');
    expect(tcc('committed', 'committed', 'confirm', 'failed')).toBe('not_in_progress');
    expect(tcc('committing', 'prepared', 'cancel')).toBe('not_in_progress');
    expect(tcc('active', 'pending', 'confirm')).toBe('not_in_progress');
  });

  it('a phase of another mode or of no branch is never in progress', () => {
    expect(tcc('active', 'pending', 'prepare')).toBe('not_in_progress');
    expect(tcc('active', 'pending', 'check')).toBe('not_in_progress');
    expect(tcc('active', 'pending', 'resume')).toBe('not_in_progress');
    expect(readBranchReport(TWO_PHASE_COMMIT_RULES, 'committing', { kind: '2pc', status: 'prepared', sent: true }, { phase: 'commit', outcome: 'ok' })).toBe('apply');
  });

  it('saga: a step\'s execute until it is committed or failed; its compensate once rolling back', () => {
    const saga = (txStatus: GlobalStatus, status: BranchStatus, phase: Phase, outcome: 'ok' | 'failed' = 'ok') =>
      readBranchReport(SAGA_RULES, txStatus, { kind: 'saga', status, sent: true }, { phase, outcome });
    expect(saga('active', 'pending', 'execute')).toBe('apply');
    expect(saga('committed', 'committed', 'execute')).toBe('repeat');
    expect(saga('rolling_back', 'committed', 'compensate')).toBe('apply');
    expect(saga('rolled_back', 'rolled_back', 'compensate')).toBe('repeat');
  });
});

describe('readCheckReport (msg\'s check-back)', () => {
  it('in progress while the message is active past its deadline; a repeat once decided as the answer decides', () => {
    expect(readCheckReport({ status: 'active', reason: null }, true, 'ok')).toBe('apply');
    expect(readCheckReport({ status: 'active', reason: null }, false, 'ok')).toBe('not_in_progress');
    expect(readCheckReport({ status: 'committed', reason: null }, true, 'ok')).toBe('repeat');
    expect(readCheckReport({ status: 'rolled_back', reason: 'timeout' }, true, 'failed')).toBe('repeat');
    expect(readCheckReport({ status: 'rolled_back', reason: 'client' }, true, 'failed')).toBe('not_in_progress');
    expect(readCheckReport({ status: 'committed', reason: null }, true, 'failed')).toBe('not_in_progress');
  });
});

describe('reportedOutcome', () => {
  it('is the answer the call would have had, recordable whatever it carries', () => {
    expect(reportedOutcome({ outcome: 'ok', result: { approvedBy: 'ann' } })).toEqual({ kind: 'ok', result: { approvedBy: 'ann' } });
    expect(reportedOutcome({ outcome: 'failed', result: { reason: 'no' } })).toEqual({ kind: 'failed', error: { reason: 'no' } });
    const unstorable = reportedOutcome({ outcome: 'ok', result: 'nul\u0000' });
    expect(unstorable.kind).toBe('ok');
    expect(unstorable.kind === 'ok' && isUnstorableAnswer(unstorable.result)).toBe(true);
  });
});
