/**
 * The jepsen suite's own checks, on top of the chaos runner's (transfer-checks.ts), made once
 * every transaction has ended, from the calls the banks' recorders saw (real clock), the
 * trigger's log of versions and leases (lease-log.ts) and the coordinator's tables (Postgres
 * time; Postgres runs on this machine, so both are the same clock):
 *
 * - no call sent under a lease `instance/v` arrives after another instance's claim took the
 *   transaction past v, nor after the lease of v ran out (lease_until, Postgres time);
 * - no branch is given both decisions, and no branch is given the decision its transaction did
 *   not take;
 * - no deadline is acted on early: no rollback for `timeout` before the deadline, no msg
 *   check-back before it; and the first check-back comes within CHECK_BACK_WITHIN_MS after it,
 *   unless a fault (or a lease taken just before one) could hold it up.
 */
import type { Mode } from '@nest-dtx/protocol';
import { COMMIT_PHASES, ROLLBACK_PHASES, type Violation } from '../transfer-checks.js';
import type { VersionRow } from './lease-log.js';
import type { RecordedCall } from './recorded-call.js';

/** How far a call's arrival may trail what bounds it: the recorder's own delay between the call reaching the host and its handler reading the clock. */
export const ARRIVAL_TOLERANCE_MS = 25;
/** JavaScript dates of a Postgres timestamp are cut to the millisecond. */
const PG_ROUNDING_MS = 1;
/** A check-back should come this soon after the deadline (the recovery interval, a claim and a call). */
export const CHECK_BACK_WITHIN_MS = 1_000;

export interface TxRow {
  gid: string;
  mode: Mode;
  status: string;
  reason: string | null;
  deadline: number;
}

export interface TimeoutEvent {
  gid: string;
  at: number;
}

/** A time when a fault could hold the coordinators up: [from, to] in ms, real clock. */
export interface FaultWindow {
  kind: string;
  from: number;
  to: number;
}

export interface LeaseFigures {
  /** Calls made under a lease (x-tx-coordinator with a version), phase-2 ones apart. */
  leasedCalls: number;
  leasedPhase2Calls: number;
  /** Calls under a lease whose version the trigger never logged (should be 0). */
  unmatched: number;
  /** Arrived after another instance's claim took the transaction past their version. */
  afterClaim: number;
  /** Arrived after their lease ran out (lease_until). */
  afterExpiry: number;
  /** The latest any leased call arrived relative to its lease's end (negative: before it). */
  closestToExpiryMs: number | null;
  /** Calls whose sender had given up on them before they arrived, during or just after a cut between the two (held by the network through the partition), not counted above. */
  deliveredAfterSenderGaveUp: number;
  /** Of those, how many arrived after another instance's claim. */
  deliveredLateAfterClaim: number;
  /** Calls written in the instant their sender was stopped, arriving as it resumed (recorded-call.ts sentAtResume), not counted above. */
  sentAtResume: number;
}

export interface DeadlineFigures {
  timeouts: number;
  earlyTimeouts: number;
  /** How far before its deadline the earliest timeout was acted on (ms; 0 when none was early). */
  earliestTimeoutMs: number;
  checkBacks: number;
  earlyCheckBacks: number;
  earliestCheckBackMs: number;
  /** Messages that were checked back, and how late their first check-back came after the deadline. */
  checkedMessages: number;
  firstCheckBackLatenessMs: { max: number; p50: number; p99: number };
  /** First check-backs later than CHECK_BACK_WITHIN_MS with no fault to explain it. */
  lateCheckBacks: number;
}

export interface DecisionFigures {
  /** Phase-2 calls that reached the banks. */
  phase2Received: number;
  /** Branches given both a commit and a rollback. */
  bothDecisions: number;
  /** Branches given the decision their transaction did not take. */
  wrongDecision: number;
}

const senderOf = (call: RecordedCall): { instance: string; version: number } | null => {
  const match = /^(.+)\/(\d+)$/.exec(call.sender);
  return match ? { instance: match[1], version: Number(match[2]) } : null;
};

const isPhase2Call = (call: RecordedCall): boolean => COMMIT_PHASES.has(call.phase) || ROLLBACK_PHASES.has(call.phase) || (call.mode === 'msg' && call.phase === 'execute');

/** No call under a lease after the lease was gone (claimed by another instance, or run out). */
export function checkLeases(
  calls: readonly RecordedCall[],
  versions: readonly VersionRow[],
  violations: Violation[],
  heldByNetwork: (call: RecordedCall) => boolean = () => false,
  atResume: (call: RecordedCall) => boolean = () => false,
  /** Gets the calls counted in `sentAtResume`, which the overlap check then leaves out too. */
  excused: Set<RecordedCall> = new Set(),
): LeaseFigures {
  const byGid = new Map<string, VersionRow[]>();
  for (const row of versions) byGid.set(row.gid, [...(byGid.get(row.gid) ?? []), row]);
  const figures: LeaseFigures = {
    leasedCalls: 0,
    leasedPhase2Calls: 0,
    unmatched: 0,
    afterClaim: 0,
    afterExpiry: 0,
    closestToExpiryMs: null,
    deliveredAfterSenderGaveUp: 0,
    deliveredLateAfterClaim: 0,
    sentAtResume: 0,
  };
  for (const call of calls) {
    const sender = senderOf(call);
    if (!sender) continue;
    figures.leasedCalls++;
    const phase2 = isPhase2Call(call);
    if (phase2) figures.leasedPhase2Calls++;
    const rows = byGid.get(call.gid) ?? [];
    const own = rows.filter((r) => r.version === sender.version);
    // The version may have been written more than once (a lost compare-and-set never is; a
    // version comes back only if a row were reinserted): the latest before the call counts.
    const lease = own.filter((r) => r.at <= call.at + ARRIVAL_TOLERANCE_MS).at(-1) ?? own.at(-1);
    const claim = rows.find((r) => r.claim && r.version > sender.version && r.leaseOwner !== sender.instance && r.at < call.at);
    if (heldByNetwork(call)) {
      figures.deliveredAfterSenderGaveUp++;
      if (claim) figures.deliveredLateAfterClaim++;
      continue;
    }
    const what = `${call.phase} of ${call.branchId} under lease ${call.sender}`;
    const afterClaim = claim !== undefined && call.at - claim.at > ARRIVAL_TOLERANCE_MS;
    const past = lease?.leaseUntil == null ? null : call.at - lease.leaseUntil;
    const afterExpiry = past !== null && past > ARRIVAL_TOLERANCE_MS && lease?.leaseOwner === sender.instance;
    // Late only because its sender was stopped while writing it: counted apart, not as a violation.
    if ((afterClaim || afterExpiry) && atResume(call)) {
      figures.sentAtResume++;
      excused.add(call);
      continue;
    }
    if (afterClaim) {
      figures.afterClaim++;
      violations.push({ gid: call.gid, problem: `${what} arrived ${call.at - claim.at} ms after ${claim.leaseOwner ?? '?'} claimed it (version ${claim.version})` });
    }
    if (!lease || past === null) {
      figures.unmatched++;
      continue;
    }
    if (lease.leaseOwner !== sender.instance) {
      violations.push({ gid: call.gid, problem: `${what}, but version ${sender.version} was leased to ${lease.leaseOwner ?? 'nobody'}` });
      continue;
    }
    figures.closestToExpiryMs = figures.closestToExpiryMs === null ? past : Math.max(figures.closestToExpiryMs, past);
    if (afterExpiry) {
      figures.afterExpiry++;
      violations.push({ gid: call.gid, problem: `${what} arrived ${past} ms after that lease ran out${phase2 ? '' : ' (not a phase-2 call)'}` });
    }
  }
  return figures;
}

/** No branch given both decisions, nor the one its transaction did not take (calls that reached the bank). */
export function checkDecisions(calls: readonly RecordedCall[], txs: ReadonlyMap<string, TxRow>, violations: Violation[]): DecisionFigures {
  const figures: DecisionFigures = { phase2Received: 0, bothDecisions: 0, wrongDecision: 0 };
  const given = new Map<string, { commit: boolean; rollback: boolean }>();
  for (const call of calls) {
    if (call.injected || !isPhase2Call(call)) continue;
    figures.phase2Received++;
    const key = `${call.gid}\u0000${call.branchId}`;
    const seen = given.get(key) ?? { commit: false, rollback: false };
    if (ROLLBACK_PHASES.has(call.phase)) seen.rollback = true;
    else seen.commit = true;
    given.set(key, seen);
  }
  for (const [key, seen] of given) {
    const [gid, branchId] = key.split('\u0000');
    if (seen.commit && seen.rollback) {
      figures.bothDecisions++;
      violations.push({ gid, problem: `branch ${branchId} was given both a commit and a rollback` });
    }
    const status = txs.get(gid)?.status;
    if ((seen.commit && status !== 'committed') || (seen.rollback && status !== 'rolled_back')) {
      figures.wrongDecision++;
      violations.push({ gid, problem: `branch ${branchId} was given ${seen.commit ? 'a commit' : 'a rollback'}, but the transaction ended ${status ?? 'unknown'}` });
    }
  }
  return figures;
}

const quantile = (sorted: readonly number[], q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);

/** No deadline acted on early; check-backs soon after it (unless a fault explains the wait). */
export function checkDeadlines(
  calls: readonly RecordedCall[],
  txs: ReadonlyMap<string, TxRow>,
  timeouts: readonly TimeoutEvent[],
  windows: readonly FaultWindow[],
  leaseMs: number,
  violations: Violation[],
  /**
   * The first check-back each message's coordinator recorded (transaction_events, Postgres time),
   * whether or not it reached the bank: a call the participant's gate held back (its circuit
   * breaker open after transient answers) is an attempt in time that no bank saw.
   */
  checkAttempts: ReadonlyMap<string, number> = new Map(),
): DeadlineFigures {
  const figures: DeadlineFigures = {
    timeouts: timeouts.length,
    earlyTimeouts: 0,
    earliestTimeoutMs: 0,
    checkBacks: 0,
    earlyCheckBacks: 0,
    earliestCheckBackMs: 0,
    checkedMessages: 0,
    firstCheckBackLatenessMs: { max: 0, p50: 0, p99: 0 },
    lateCheckBacks: 0,
  };
  for (const event of timeouts) {
    const tx = txs.get(event.gid);
    if (!tx) continue;
    const early = tx.deadline - event.at;
    if (early > PG_ROUNDING_MS) {
      figures.earlyTimeouts++;
      figures.earliestTimeoutMs = Math.max(figures.earliestTimeoutMs, early);
      violations.push({ gid: event.gid, problem: `${tx.mode} rolled back for timeout ${early} ms before its deadline` });
    }
  }
  const first = new Map<string, number>();
  for (const call of calls) {
    if (call.phase !== 'check') continue;
    const tx = txs.get(call.gid);
    if (!tx) continue;
    figures.checkBacks++;
    const early = tx.deadline - call.at;
    if (early > PG_ROUNDING_MS) {
      figures.earlyCheckBacks++;
      figures.earliestCheckBackMs = Math.max(figures.earliestCheckBackMs, early);
      violations.push({ gid: call.gid, problem: `msg checked back ${early} ms before its deadline` });
    }
    first.set(call.gid, Math.min(first.get(call.gid) ?? Number.POSITIVE_INFINITY, call.at));
  }
  const lateness: number[] = [];
  for (const [gid, arrived] of first) {
    const tx = txs.get(gid);
    if (!tx) continue;
    const late = Math.min(arrived, checkAttempts.get(gid) ?? Number.POSITIVE_INFINITY) - tx.deadline;
    lateness.push(late);
    // A fault (or a lease taken just before it, which holds the message until it runs out) explains a wait.
    const explained = windows.some((w) => w.from <= tx.deadline + CHECK_BACK_WITHIN_MS && w.to + leaseMs >= tx.deadline);
    if (late > CHECK_BACK_WITHIN_MS && !explained) {
      figures.lateCheckBacks++;
      violations.push({ gid, problem: `msg first checked back ${late} ms after its deadline (no fault then)` });
    }
  }
  lateness.sort((a, b) => a - b);
  figures.checkedMessages = lateness.length;
  figures.firstCheckBackLatenessMs = { max: lateness.at(-1) ?? 0, p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99) };
  return figures;
}
