import type {
  BranchLocksView,
  BranchView,
  Json,
  HeldLocksPage,
  ParticipantAdminView,
  ParticipantView,
  SecretRotationView,
  TransactionCounts,
  TransactionDetailView,
  TransactionEventView,
  TransactionPage,
  TransactionView,
} from '@nest-dtx/protocol';
import { natsBranchSubject, rabbitmqParticipantQueue } from '@nest-dtx/protocol';
import { compactJson, duration, fields, instant, labelled, orDash, table, truncate } from './format.js';

/** The admin API's answers as people read them (--json prints them as sent instead). */

export function transactionPage(page: TransactionPage): string {
  if (page.items.length === 0) return 'no transactions';
  const rows = page.items.map((t) => [
    t.gid,
    t.mode,
    t.status,
    orDash(t.reason),
    t.needsAttention ? 'yes' : '-',
    String(t.branches.length),
    instant(t.createdAt),
    instant(t.updatedAt),
  ]);
  const listing = table(['GID', 'MODE', 'STATUS', 'REASON', 'ATTENTION', 'BRANCHES', 'CREATED', 'UPDATED'], rows);
  return page.nextCursor ? `${listing}\n\nmore: --cursor ${page.nextCursor}` : listing;
}

export function transactionDetail(detail: TransactionDetailView): string {
  return [transactionSummary(detail), '', 'Branches:', branches(detail), ...locksOf(detail), '', 'History:', history(detail.events)].join('\n');
}

/**
 * One line per event, its detail cut to keep the table narrow; an error, the one part an
 * operator needs whole, goes on the lines under its event instead.
 */
function history(events: readonly TransactionEventView[]): string {
  if (events.length === 0) return 'no events';
  const split = events.map((e) => splitError(e.detail));
  return table(
    ['AT', 'EVENT', 'BRANCH', 'FROM', 'TO', 'DETAIL'],
    events.map((e, i) => [instant(e.at), e.type, orDash(e.branchId), orDash(e.from), orDash(e.to), compactJson(split[i].rest, 100)]),
    split.map(({ error }) => labelled('error', error)),
  );
}

/** An event's detail without its `error`, and the error. */
function splitError(detail: Json): { rest: Json; error: Json } {
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail) || !('error' in detail)) return { rest: detail, error: null };
  const { error, ...rest } = detail;
  return { rest, error };
}

function locksOf(detail: TransactionDetailView): string[] {
  const locked = detail.branches.filter((b) => b.locks);
  return locked.length === 0 ? [] : ['', 'Locks (AT):', branchLocks(locked)];
}

/** `locks`: the row locks AT branches hold now, held longest first. */
export function heldLocks(page: HeldLocksPage): string {
  if (page.items.length === 0) return 'no locks held';
  const rows = page.items.map((l) => [
    l.gid,
    l.branchId,
    l.participant,
    l.action,
    l.transactionStatus,
    String(l.count),
    duration(l.heldMs),
    instant(l.since),
    lockedRows(l),
  ]);
  const listing = table(['GID', 'BRANCH', 'PARTICIPANT', 'ACTION', 'TX STATUS', 'LOCKS', 'HELD', 'SINCE', 'ROWS'], rows);
  return page.nextCursor ? `${listing}\n\nmore: --cursor ${page.nextCursor}` : listing;
}

/** The first rows named, `table key` each, and how many more the branch locked. */
function lockedRows(locks: Pick<BranchLocksView, 'count' | 'rows'>, named = 3): string {
  const shown = locks.rows.slice(0, named).map((r) => `${r.table} ${r.key}`);
  const more = locks.count - shown.length;
  return truncate(shown.join(', '), 120) + (more > 0 ? ` (+${more} more)` : '');
}

/** Each locked row of each AT branch of `tx show`, with how long it was (or is) held. */
function branchLocks(locked: readonly { branchId: string; locks?: BranchLocksView }[]): string {
  const rows = locked.flatMap(({ branchId, locks }) => {
    if (!locks) return [];
    const held = locks.releasedAt ? `${duration(locks.heldMs)} (released ${instant(locks.releasedAt)})` : `${duration(locks.heldMs)} (held)`;
    const named = locks.rows.map((r) => [branchId, r.table, r.key, instant(locks.since), held]);
    const unnamed = locks.count - locks.rows.length;
    return unnamed > 0 ? [...named, [branchId, `(+${unnamed} more rows)`, '', instant(locks.since), held]] : named;
  });
  return table(['BRANCH', 'TABLE', 'KEY', 'SINCE', 'HELD'], rows);
}

/** After `tx retry` or `tx rollback`: what was asked and where the transaction stands now. */
export function transactionAction(view: TransactionView, action: 'retry' | 'rollback'): string {
  const done = action === 'retry' ? 'retry scheduled' : 'rollback requested';
  return `${view.gid}: ${done}; now ${view.status}${view.reason ? ` (reason ${view.reason})` : ''}`;
}

export function participantList(participants: readonly ParticipantAdminView[]): string {
  if (participants.length === 0) return 'no participants';
  const rows = participants.map((p) => [
    p.name,
    p.transport,
    address(p),
    p.actions.map((a) => a.name).join(','),
    orDash(p.owner),
    String(p.secretGeneration),
    instant(p.previousSecretValidUntil),
    instant(p.updatedAt),
  ]);
  return table(['NAME', 'TRANSPORT', 'ADDRESS', 'ACTIONS', 'OWNER', 'SECRET', 'PREVIOUS SECRET UNTIL', 'UPDATED'], rows);
}

export function secretRotation(view: SecretRotationView): string {
  return fields([
    ['participant', view.name],
    ['secret generation', String(view.secretGeneration)],
    ['previous secret until', view.previousSecretValidUntil ? instant(view.previousSecretValidUntil) : 'revoked'],
    ['signing secret', view.signingSecret],
  ]);
}

export function participantRelease(view: ParticipantAdminView): string {
  return `${view.name}: released; the next key to register it owns it (secret generation ${view.secretGeneration}, the previous secret revoked)`;
}

export function counts(stats: TransactionCounts): string {
  if (stats.total === 0) return 'no transactions';
  const byStatus = Object.entries(stats.byStatus).map(([status, n]) => [status, String(n)]);
  const byMode = Object.entries(stats.byMode).map(([mode, n]) => [mode, String(n)]);
  return [
    table(['STATUS', 'COUNT'], byStatus),
    '',
    table(['MODE', 'COUNT'], byMode),
    '',
    fields([
      ['needs attention', String(stats.needsAttention)],
      ['total', String(stats.total)],
    ]),
  ].join('\n');
}

function transactionSummary(t: TransactionView): string {
  return fields([
    ['gid', t.gid],
    ['mode', t.mode],
    ['status', t.status],
    ['reason', orDash(t.reason)],
    ['needs attention', t.needsAttention ? 'yes' : 'no'],
    ['created', instant(t.createdAt)],
    ['updated', instant(t.updatedAt)],
    ['deadline', instant(t.deadline)],
    ['metadata', Object.keys(t.metadata).length > 0 ? compactJson(t.metadata, 200) : '-'],
    ...(t.workflow
      ? ([
          ['workflow', `${t.workflow.name} on ${t.workflow.participant}`],
          ['input', compactJson(t.input ?? null, 200)],
          ['result', t.result === null || t.result === undefined ? '-' : compactJson(t.result, 200)],
        ] as const)
      : []),
  ]);
}

function branches(t: TransactionView): string {
  if (t.branches.length === 0) return t.mode === 'workflow' ? 'no steps recorded' : 'no branches';
  // A 202 (long-running) is no failure: the branch is waiting for its participant, since then.
  const status = (b: BranchView) => (b.waitingSince ? `${b.status}, waiting since ${instant(b.waitingSince)}` : b.status);
  // The API's `attempts`: calls made to the branch over all its phases (its try included).
  if (t.mode === 'workflow') {
    // A workflow's steps, in the order its host recorded them, each of its own kind.
    return table(
      ['STEP', 'KIND', 'PARTICIPANT', 'ACTION', 'STATUS', 'CALLS'],
      t.branches.map((b) => [b.branchId, b.kind ?? '-', b.participant, b.action, status(b), String(b.attempts)]),
      t.branches.map((b) => labelled('last error', b.lastError)),
    );
  }
  return table(
    ['BRANCH', 'PARTICIPANT', 'ACTION', 'STATUS', 'CALLS'],
    t.branches.map((b) => [b.branchId, b.participant, b.action, status(b), String(b.attempts)]),
    t.branches.map((b) => labelled('last error', b.lastError)),
  );
}

function address(p: ParticipantView): string {
  if (p.endpoint) return p.endpoint;
  if (p.host) return `${p.host}:${p.port ?? ''}`;
  switch (p.transport) {
    case 'redis':
      return '(coordinator Redis)';
    case 'rabbitmq':
      return p.publish ? '(coordinator RabbitMQ: publishes to the queue of each action)' : `(coordinator RabbitMQ) queue ${rabbitmqParticipantQueue(p.name)}`;
    case 'nats':
      return p.publish ? '(coordinator NATS: publishes to the JetStream subject of each action)' : `(coordinator NATS) subject ${natsBranchSubject(p.name)}`;
    default:
      return '-';
  }
}
