/**
 * The invariants the fault runners (`npm run chaos`, `npm run jepsen`) check once every
 * transaction has ended: the coordinator's own record (every transaction terminal, its status
 * history legal, every branch delivered the decided phase), the calls the banks received (no
 * two leases' phase-2 calls overlapping, no message executed before its commit), and the banks'
 * state (each account moved by the committed transfers only, nothing frozen, no prepared
 * transaction left).
 */
import pg from 'pg';
import type { Mode } from '@nest-dtx/protocol';
import { accountsOf, until, type ServiceHandle } from './stack.js';
import { OPENING_BALANCE, type Bank, type Leg } from './transfers.js';

export const PHASE1 = new Set(['try', 'prepare', 'execute']);
export const ROLLBACK_PHASES = new Set(['cancel', 'rollback', 'compensate']);
export const COMMIT_PHASES = new Set(['confirm', 'commit']);
const PHASE2 = new Set(['confirm', 'cancel', 'commit', 'rollback', 'compensate']);

/** A call as a bank (or the proxy in front of it) saw it: which instance sent which phase of which branch, and when. */
export interface SeenCall {
  gid: string;
  branchId: string;
  mode: string;
  phase: string;
  /** The x-tx-coordinator header: `instance/leaseVersion`, or the instance alone for a call made outside a lease. */
  instance: string;
  at: number;
}

/** A phase-2 call: a decided transaction's confirm/cancel/..., or a message's execute (only ever sent after its commit). */
export const isPhase2 = (call: Pick<SeenCall, 'mode' | 'phase'>): boolean => PHASE2.has(call.phase) || (call.mode === 'msg' && call.phase === 'execute');

export interface Violation {
  gid: string;
  problem: string;
  history?: unknown;
}

/** What the checks of the coordinator's record count. */
export interface RecordTally {
  committed: number;
  rolledBack: number;
  notStarted: number;
  violations: Violation[];
  /** Rolled-back transactions by reason (client, timeout, branch_failed, admin). */
  rollbackReasons: Record<string, number>;
  /** Phase-1 calls that did not succeed, by outcome and error (what sent transactions to rollback). */
  phase1Failures: Record<string, number>;
  phase2Calls: number;
  /** msg check-backs the coordinators made, by outcome (ok: the local transaction had committed; failed: it had not). */
  checkBacks: Record<string, number>;
}

export const emptyTally = (): RecordTally => ({ committed: 0, rolledBack: 0, notStarted: 0, violations: [], rollbackReasons: {}, phase1Failures: {}, phase2Calls: 0, checkBacks: {} });

/**
 * Atomicity, exactly once: each account holds its opening balance moved by the committed
 * transfers only, nothing is left frozen or pending, and the money is all there. Calls
 * `committed` for each committed transfer. Returns the banks' total.
 */
export async function checkBankBalances(
  violations: Violation[],
  status: ReadonlyMap<string, string>,
  legsByGid: ReadonlyMap<string, Leg[]>,
  banks: Readonly<Record<Bank, ServiceHandle>>,
  initial: number,
  committed: (gid: string) => void = () => undefined,
): Promise<number> {
  const expected = new Map<string, number>();
  for (const [gid, legs] of legsByGid) {
    if (status.get(gid) !== 'committed') continue;
    committed(gid);
    for (const leg of legs) {
      const key = `${leg.bank}/${leg.account}`;
      expected.set(key, (expected.get(key) ?? OPENING_BALANCE) + (leg.action === 'debit' ? -leg.amount : leg.amount));
    }
  }
  let total = 0;
  for (const [name, bank] of Object.entries(banks)) {
    const summary = await until(`${name} to answer`, () => accountsOf(bank), 60_000, 1_000);
    total += summary.totalBalance;
    if (summary.totalFrozen !== 0) violations.push({ gid: '-', problem: `${name}: ${summary.totalFrozen} left frozen` });
    if (summary.pendingCredits !== 0) violations.push({ gid: '-', problem: `${name}: ${summary.pendingCredits} left as pending credit` });
    for (const account of summary.accounts) {
      const want = expected.get(`${name}/${account.id}`) ?? OPENING_BALANCE;
      if (account.balance !== want) violations.push({ gid: '-', problem: `${name}/${account.id}: balance ${account.balance}, expected ${want}` });
    }
  }
  if (total !== initial) violations.push({ gid: '-', problem: `money not conserved: ${initial} before, ${total} after` });
  return total;
}

/** The gids of the prepared transactions (2PC branches) left in a bank's database. */
export async function preparedLeft(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const prepared = await client.query<{ gid: string }>(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`);
    return prepared.rows.map((row) => row.gid);
  } finally {
    await client.end();
  }
}

/** Rolls back every prepared transaction left in a bank's database (after a failed run, before it is dropped). */
export async function rollBackPrepared(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const row of (await client.query<{ gid: string }>(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`)).rows) {
      await client.query(`ROLLBACK PREPARED '${row.gid.replaceAll("'", "''")}'`);
    }
  } finally {
    await client.end();
  }
}

export const PHASE2_OF: Record<Mode, { commit: string | null; rollback: string | null }> = {
  tcc: { commit: 'confirm', rollback: 'cancel' },
  '2pc': { commit: 'commit', rollback: 'rollback' },
  msg: { commit: 'execute', rollback: null },
  saga: { commit: null, rollback: 'compensate' },
  // The bank transfers run as workflows record tcc steps.
  workflow: { commit: 'confirm', rollback: 'cancel' },
};

/**
 * The coordinator's own record, after every transaction ended: every one terminal; its status
 * history moved only as PROTOCOL.md 2 allows and ends where the row is; its event history is
 * complete and in order (every branch ended in the decided state, with a successful call of the
 * decided phase after the decision); phase-2 calls under two leases never overlap.
 */
export async function checkInvariants(db: pg.Client, report: RecordTally, legsByGid: ReadonlyMap<string, Leg[]>, seen: readonly SeenCall[]): Promise<void> {
  const rows = (await db.query<{ gid: string; status: string; mode: Mode; reason: string | null }>(`SELECT gid, status, mode, reason FROM global_transactions`)).rows;
  for (const r of rows) {
    if (r.status === 'committed') report.committed++;
    else if (r.status === 'rolled_back') {
      report.rolledBack++;
      report.rollbackReasons[r.reason ?? '?'] = (report.rollbackReasons[r.reason ?? '?'] ?? 0) + 1;
    } else report.violations.push({ gid: r.gid, problem: `left ${r.status}` });
  }
  report.notStarted = legsByGid.size - rows.length;

  const failures = await db.query<{ cause: string; n: string }>(
    `SELECT (detail->>'outcome') || ': ' || regexp_replace(left(coalesce(detail->>'error', ''), 60), '[0-9]+', 'N', 'g') AS cause, count(*) AS n
     FROM transaction_events WHERE type = 'call' AND detail->>'phase' IN ('try', 'prepare', 'execute') AND detail->>'outcome' <> 'ok'
     GROUP BY 1 ORDER BY 2 DESC LIMIT 8`,
  );
  for (const f of failures.rows) report.phase1Failures[f.cause] = Number(f.n);

  const allowed: Record<string, string[]> = { active: ['committing', 'rolling_back', 'committed'], committing: ['committed'], rolling_back: ['rolled_back'] };
  const events = (
    await db.query<{ id: string; gid: string; type: string; branch_id: string | null; from_status: string | null; to_status: string | null; detail: { phase?: string; outcome?: string } | null; at: Date; mode: Mode }>(
      `SELECT e.id, e.gid, e.type, e.branch_id, e.from_status, e.to_status, e.detail, e.at, t.mode
       FROM transaction_events e JOIN global_transactions t USING (gid) ORDER BY e.id`,
    )
  ).rows;
  const byGid = new Map<string, typeof events>();
  for (const e of events) byGid.set(e.gid, [...(byGid.get(e.gid) ?? []), e]);
  const branches = (await db.query<{ gid: string; branch_id: string; status: string }>(`SELECT gid, branch_id, status FROM branches`)).rows;
  const branchesByGid = new Map<string, typeof branches>();
  for (const b of branches) branchesByGid.set(b.gid, [...(branchesByGid.get(b.gid) ?? []), b]);

  for (const { gid, mode, status: final } of rows) {
    const history = byGid.get(gid) ?? [];
    const violation = (problem: string) => report.violations.push({ gid, problem, history: history.map((e) => [e.type, e.branch_id, e.from_status, e.to_status, e.detail?.phase, e.detail?.outcome]) });
    // Status: created active, then only allowed moves, ending where the row is.
    let current: string | null = null;
    let decidedAt = -1;
    for (const [index, e] of history.entries()) {
      if (e.type !== 'created' && e.type !== 'status') continue;
      const ok = current === null
        ? e.type === 'created' && e.to_status === 'active'
        : e.from_status === current && (allowed[current] ?? []).includes(e.to_status ?? '') && !(mode !== 'saga' && current === 'active' && e.to_status === 'committed');
      if (!ok) violation(`status move ${current ?? '(none)'} -> ${e.to_status}`);
      current = e.to_status;
      if (current !== 'active' && decidedAt < 0) decidedAt = index;
    }
    if (current !== final) violation(`history ends ${current}, row says ${final}`);
    if (history.some((e, i) => i > 0 && e.at.getTime() < history[i - 1].at.getTime())) violation('events out of time order');
    // Branches: every one in the decided state, with a successful call of the decided phase after the decision.
    const phase = final === 'committed' ? PHASE2_OF[mode].commit : final === 'rolled_back' ? PHASE2_OF[mode].rollback : null;
    const wanted = final === 'committed' ? 'committed' : 'rolled_back';
    for (const b of branchesByGid.get(gid) ?? []) {
      if (final !== 'committed' && final !== 'rolled_back') continue;
      if (b.status !== wanted) violation(`branch ${b.branch_id} ended ${b.status} in a ${final} transaction`);
      if (phase === null && mode === 'msg') {
        // A message that was rolled back was never sent to its branches.
        if (history.some((e) => e.branch_id === b.branch_id && e.type === 'call' && e.detail?.phase === 'execute')) {
          violation(`rolled-back message: branch ${b.branch_id} was sent execute`);
        }
        continue;
      }
      if (phase === null) {
        if (!history.some((e) => e.branch_id === b.branch_id && e.type === 'call' && e.detail?.phase === 'execute' && e.detail.outcome === 'ok')) {
          violation(`committed saga step ${b.branch_id} has no successful execute in its history`);
        }
        continue;
      }
      const delivered = history.findIndex((e, i) => i > decidedAt && e.branch_id === b.branch_id && e.type === 'call' && e.detail?.phase === phase && e.detail.outcome === 'ok');
      if (decidedAt < 0 || delivered < 0) violation(`branch ${b.branch_id}: no successful ${phase} recorded after the decision`);
    }
  }

  // Fencing: phase-2 calls for one transaction never come from two holders at once. The calls
  // sent under one lease (instance/version) span [first, last]; two leases' spans may not overlap.
  const spans = new Map<string, Map<string, { first: number; last: number }>>();
  for (const call of seen.filter(isPhase2)) {
    const byInstance = spans.get(call.gid) ?? new Map<string, { first: number; last: number }>();
    const span = byInstance.get(call.instance) ?? { first: call.at, last: call.at };
    span.first = Math.min(span.first, call.at);
    span.last = Math.max(span.last, call.at);
    byInstance.set(call.instance, span);
    spans.set(call.gid, byInstance);
  }
  for (const [gid, byInstance] of spans) {
    const list = [...byInstance.entries()].sort((x, y) => x[1].first - y[1].first);
    for (let k = 1; k < list.length; k++) {
      if (list[k][1].first < list[k - 1][1].last) {
        report.violations.push({ gid, problem: `phase-2 calls under leases ${list[k - 1][0]} and ${list[k][0]} overlap`, history: seen.filter((c) => c.gid === gid) });
      }
    }
  }
  report.phase2Calls = seen.filter(isPhase2).length;
  // Every message's execute came after its commit (PROTOCOL.md 5.3), whoever decided it (the
  // bank's submit or a check-back): no execute reached a bank for a message before that.
  const decidedAtByGid = new Map(events.filter((e) => e.mode === 'msg' && e.type === 'status' && e.to_status === 'committing').map((e) => [e.gid, e.at.getTime()]));
  for (const call of seen.filter((c) => c.mode === 'msg' && c.phase === 'execute')) {
    const decided = decidedAtByGid.get(call.gid);
    if (decided === undefined || call.at < decided - 5) report.violations.push({ gid: call.gid, problem: `execute of ${call.branchId} reached the bank before the message was committed` });
  }
  const checks = await db.query<{ outcome: string; n: string }>(
    `SELECT detail->>'outcome' AS outcome, count(*) AS n FROM transaction_events WHERE type = 'call' AND detail->>'phase' = 'check' GROUP BY 1 ORDER BY 1`,
  );
  report.checkBacks = Object.fromEntries(checks.rows.map((r) => [r.outcome, Number(r.n)]));
}
