import type { BranchStatus, GlobalStatus, Json, JsonObject, Mode, RollbackReason, StepKind, TransactionEventView } from '@nest-dtx/protocol';
import type { BranchRecord, CompensateTarget, EventInput, LoadedTx, TxRecord } from './records.js';

/** Rows as Postgres sends them (row_to_json, or plain columns): snake_case names, JSON values. */
export type RawRow = Record<string, unknown>;

/** Timestamps come back from row_to_json as ISO strings. */
export const toDate = (value: unknown): Date => new Date(value as string);
const toDateOrNull = (value: unknown): Date | null => (value == null ? null : new Date(value as string));

/** bytea: a Buffer from a plain column, `\\x<hex>` from row_to_json. */
function toBytesOrNull(value: unknown): Buffer | null {
  if (value == null) return null;
  if (Buffer.isBuffer(value)) return value;
  return typeof value === 'string' && value.startsWith('\\x') ? Buffer.from(value.slice(2), 'hex') : null;
}

export function mapTx(raw: RawRow): TxRecord {
  return {
    gid: String(raw.gid),
    mode: raw.mode as Mode,
    status: raw.status as GlobalStatus,
    reason: (raw.reason ?? null) as RollbackReason | null,
    oneShot: Boolean(raw.one_shot),
    concurrent: Boolean(raw.concurrent),
    requestHash: String(raw.request_hash),
    metadata: (raw.metadata ?? {}) as JsonObject,
    timeoutMs: Number(raw.timeout_ms),
    deadline: toDate(raw.deadline),
    version: Number(raw.version),
    attempts: Number(raw.attempts),
    needsAttention: Boolean(raw.needs_attention),
    nextAttemptAt: toDateOrNull(raw.next_attempt_at),
    leaseOwner: (raw.lease_owner ?? null) as string | null,
    leaseUntil: toDateOrNull(raw.lease_until),
    traceParent: (raw.trace_parent ?? null) as string | null,
    check: typeof raw.check_participant === 'string' ? { participant: raw.check_participant, action: raw.check_action as string } : null,
    workflow: typeof raw.workflow_participant === 'string' ? { participant: raw.workflow_participant, name: raw.workflow_name as string } : null,
    input: (raw.input ?? null) as Json,
    result: (raw.result ?? null) as Json,
    ownerKeyDigest: toBytesOrNull(raw.owner_key_digest),
    createdAt: toDate(raw.created_at),
    updatedAt: toDate(raw.updated_at),
  };
}

export function mapBranch(raw: RawRow): BranchRecord {
  return {
    gid: String(raw.gid),
    branchId: String(raw.branch_id),
    seq: Number(raw.seq),
    participant: String(raw.participant),
    action: String(raw.action),
    payload: (raw.payload ?? {}) as JsonObject,
    dependsOn: (raw.depends_on ?? []) as string[],
    kind: (raw.kind ?? null) as StepKind | null,
    compensate: (raw.compensate ?? null) as CompensateTarget | null,
    status: raw.status as BranchStatus,
    waitingSince: toDateOrNull(raw.waiting_since),
    attempts: Number(raw.attempts),
    lastError: (raw.last_error ?? null) as Json,
    result: (raw.result ?? null) as Json,
    createdAt: toDate(raw.created_at),
    updatedAt: toDate(raw.updated_at),
  };
}

export function mapLoaded(row: { tx: RawRow; branches: RawRow[] | null }): LoadedTx {
  return { tx: mapTx(row.tx), branches: (row.branches ?? []).map(mapBranch) };
}

/** Events as the SQL statements read them (jsonb records), in order. */
export const eventRows = (events: EventInput[]) =>
  events.map((e) => ({
    type: e.type,
    branch_id: e.branchId ?? null,
    from_status: e.from ?? null,
    to_status: e.to ?? null,
    detail: e.detail ?? null,
  }));

/** A history event row (PROTOCOL.md 6). */
export function mapEvent(r: RawRow): TransactionEventView {
  return {
    at: toDate(r.at).toISOString(),
    type: String(r.type),
    branchId: (r.branch_id ?? null) as string | null,
    from: (r.from_status ?? null) as string | null,
    to: (r.to_status ?? null) as string | null,
    detail: (r.detail ?? null) as Json,
  };
}
