import { phaseKind, type BranchStatus, type CallOutcome, type GlobalStatus, type Json, type Phase, type RollbackReason } from '@nest-dtx/protocol';
import { phaseOfKind, type BranchKind } from './branch-kind.js';
import type { ModeRules } from './state-machine.js';
import { storableOutcome } from './storable-answer.js';

/**
 * A participant's report of the final answer to a phase call it answered ongoing (PROTOCOL.md
 * 3.6): `ok` has the effect of a 2xx answer to that call (`result` its body), `failed` of a 409
 * (`result` kept as lastError).
 */
export interface OutcomeReport {
  phase: Phase;
  outcome: 'ok' | 'failed';
  result: Json;
}

/**
 * What a report comes to for the branch as the transaction holds it now:
 * - `apply`: the phase is in progress for the branch: the report is its answer, once;
 * - `repeat`: the phase already had this final answer (a repeat of the report, or a repeat of
 *   the call got it first): nothing changes, the report is answered with the transaction;
 * - `not_in_progress`: anything else: another phase than the branch's now, a phase not sent
 *   yet, or one that ended otherwise (refused, rolled back at the deadline).
 */
export type ReportReading = 'apply' | 'repeat' | 'not_in_progress';

/** A branch as reading a report needs it: its kind, status, and whether its phase 1 was ever sent. */
export interface ReportedBranch {
  kind: BranchKind;
  status: BranchStatus;
  /** Whether the coordinator has called it (its phase 1 was sent): before that, no phase 1 of it is in progress. */
  sent: boolean;
}

/**
 * Reads a report of a branch's phase. Phase 1 is in progress while the transaction is active and
 * the branch pending, once its call was sent; phase 2 (commit or rollback, by the decision) from
 * the decision until the branch has it. A phase-2 `failed` (a 409 there, a participant bug) is
 * never a final answer: while phase 2 is in progress it applies (retried and flagged, as a 409 is).
 */
export function readBranchReport(rules: ModeRules, txStatus: GlobalStatus, branch: ReportedBranch, report: Pick<OutcomeReport, 'phase' | 'outcome'>): ReportReading {
  const { phase, outcome } = report;
  const role = phaseKind(phase);
  if (role === 'phase1') {
    if (phaseOfKind(branch.kind, 'active') !== phase) return 'not_in_progress';
    if (txStatus === 'active' && branch.status === 'pending' && branch.sent) return 'apply';
    // What the branch shows of that answer: a success what its kind makes of one, or committed
    // since (only a success leads there); a refusal failed. Rolled back shows neither.
    const shows = outcome === 'ok' ? branch.status === rules.afterPhase1[branch.kind] || branch.status === 'committed' : branch.status === 'failed';
    return shows ? 'repeat' : 'not_in_progress';
  }
  if (role === 'commit' || role === 'rollback') {
    const decided: GlobalStatus = role === 'commit' ? 'committing' : 'rolling_back';
    const done: BranchStatus = role === 'commit' ? 'committed' : 'rolled_back';
    if (phaseOfKind(branch.kind, decided) !== phase) return 'not_in_progress';
    if (txStatus === decided && branch.status !== done) return 'apply';
    return outcome === 'ok' && branch.status === done ? 'repeat' : 'not_in_progress';
  }
  return 'not_in_progress';
}

/**
 * Reads a report of msg's check-back (PROTOCOL.md 3.1), which is no branch: in progress while
 * the message is active and its deadline has passed (the coordinator is asking); a repeat when
 * the message was decided as that answer decides it (2xx: delivered, 409: rolled back, reason
 * timeout).
 */
export function readCheckReport(tx: { status: GlobalStatus; reason: RollbackReason | null }, asked: boolean, outcome: OutcomeReport['outcome']): ReportReading {
  if (tx.status === 'active') return asked ? 'apply' : 'not_in_progress';
  if (outcome === 'ok') return tx.status === 'committing' || tx.status === 'committed' ? 'repeat' : 'not_in_progress';
  return (tx.status === 'rolling_back' || tx.status === 'rolled_back') && tx.reason === 'timeout' ? 'repeat' : 'not_in_progress';
}

/** The report as the answer the call would have had, recordable whatever it carries (storable-answer.ts). */
export function reportedOutcome(report: Pick<OutcomeReport, 'outcome' | 'result'>): CallOutcome {
  return storableOutcome(report.outcome === 'ok' ? { kind: 'ok', result: report.result } : { kind: 'failed', error: report.result });
}
