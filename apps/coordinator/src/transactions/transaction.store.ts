import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { BranchStatus, GlobalStatus, Json, JsonObject, Mode, RollbackReason, TransactionEventView } from '@app/protocol';

/** A global transaction as the engine holds it in memory. */
export interface TxRecord {
  gid: string;
  mode: Mode;
  status: GlobalStatus;
  reason: RollbackReason | null;
  oneShot: boolean;
  concurrent: boolean;
  requestHash: string;
  metadata: JsonObject;
  timeoutMs: number;
  deadline: Date;
  version: number;
  attempts: number;
  needsAttention: boolean;
  nextAttemptAt: Date | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  traceParent: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface BranchRecord {
  gid: string;
  branchId: string;
  seq: number;
  participant: string;
  action: string;
  payload: JsonObject;
  dependsOn: string[];
  status: BranchStatus;
  attempts: number;
  lastError: Json;
  result: Json;
  createdAt: Date;
  updatedAt: Date;
}

export interface LoadedTx {
  tx: TxRecord;
  branches: BranchRecord[];
  /**
   * In memory only: until when (this process's clock) this instance holds the transaction's
   * lease, counted from before the write that took it. Unset when it holds none.
   */
  heldUntil?: number;
}

export interface EventInput {
  type: string;
  branchId?: string | null;
  from?: string | null;
  to?: string | null;
  detail?: Json;
}

export interface NewBranch {
  branchId: string;
  participant: string;
  action: string;
  payload: JsonObject;
  /** Saga steps only. */
  dependsOn?: string[];
}

export interface NewTransaction {
  gid: string;
  mode: Mode;
  oneShot: boolean;
  concurrent: boolean;
  requestHash: string;
  metadata: JsonObject;
  timeoutMs: number;
  branches: NewBranch[];
  /** Set when this instance drives the transaction right away (one-shot). */
  leaseOwner: string | null;
  /** When recovery should first look at it: the deadline, or the end of the lease for a saga being driven. */
  firstAttemptInMs: number;
  traceParent: string | null;
  events: EventInput[];
}

/** A branch change written together with its global row. */
export interface BranchChange {
  branchId: string;
  status?: BranchStatus;
  /** Calls made to the participant since the last write. */
  calls: number;
  result?: Json;
  lastError?: Json;
}

/** A compare-and-set move of a global transaction, with its branches and events, in one commit. */
export interface TxChange {
  status: GlobalStatus;
  reason: RollbackReason | null;
  attempts?: number;
  needsAttention?: boolean;
  /** Milliseconds from now until recovery should look again; null when terminal. */
  nextAttemptInMs: number | null;
  /** Owner of the lease this write takes (null releases it) and its length. */
  lease: { owner: string; ms: number } | null;
  branches: BranchChange[];
  events: EventInput[];
}

type RawRow = Record<string, unknown>;

/** Timestamps come back from row_to_json as ISO strings. */
const toDate = (value: unknown): Date => new Date(value as string);
const toDateOrNull = (value: unknown): Date | null => (value == null ? null : new Date(value as string));

function mapTx(raw: RawRow): TxRecord {
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
    createdAt: toDate(raw.created_at),
    updatedAt: toDate(raw.updated_at),
  };
}

function mapBranch(raw: RawRow): BranchRecord {
  return {
    gid: String(raw.gid),
    branchId: String(raw.branch_id),
    seq: Number(raw.seq),
    participant: String(raw.participant),
    action: String(raw.action),
    payload: (raw.payload ?? {}) as JsonObject,
    dependsOn: (raw.depends_on ?? []) as string[],
    status: raw.status as BranchStatus,
    attempts: Number(raw.attempts),
    lastError: (raw.last_error ?? null) as Json,
    result: (raw.result ?? null) as Json,
    createdAt: toDate(raw.created_at),
    updatedAt: toDate(raw.updated_at),
  };
}

function mapLoaded(row: { tx: RawRow; branches: RawRow[] | null }): LoadedTx {
  return { tx: mapTx(row.tx), branches: (row.branches ?? []).map(mapBranch) };
}

const eventsJson = (events: EventInput[]): string =>
  JSON.stringify(
    events.map((e) => ({
      type: e.type,
      branch_id: e.branchId ?? null,
      from_status: e.from ?? null,
      to_status: e.to ?? null,
      detail: e.detail ?? null,
    })),
  );

/** Inserts the events of $N for the gid of CTE `g`, in array order. */
const insertEventsSql = (param: string): string => `
  INSERT INTO transaction_events (gid, type, branch_id, from_status, to_status, detail)
  SELECT g.gid, x.e->>'type', x.e->>'branch_id', x.e->>'from_status', x.e->>'to_status', nullif(x.e->'detail', 'null'::jsonb)
  FROM g, jsonb_array_elements(${param}::jsonb) WITH ORDINALITY AS x(e, n)
  ORDER BY x.n`;

/**
 * The transaction log in Postgres. Every write is one SQL statement (data-modifying CTEs), so
 * each state change, its branches and its history commit together in one round trip, and every
 * global move is a compare-and-set on `version` (fencing against a second instance).
 */
@Injectable()
export class TransactionStore {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Creates the transaction with its known branches; null when the gid already exists. */
  async insert(input: NewTransaction, leaseMs: number): Promise<LoadedTx | null> {
    const branches = input.branches.map((b, i) => ({
      branch_id: b.branchId,
      seq: i + 1,
      participant: b.participant,
      action: b.action,
      payload: b.payload,
      depends_on: b.dependsOn ?? [],
    }));
    const rows: { tx: RawRow; branches: RawRow[] }[] = await this.db.query(
      `WITH g AS (
         INSERT INTO global_transactions
           (gid, mode, status, one_shot, concurrent, request_hash, metadata, timeout_ms, deadline, next_attempt_at, lease_owner, lease_until, trace_parent)
         VALUES ($1, $2, 'active', $3, $11, $4, $5::jsonb, $6::int, now() + $6::int * interval '1 millisecond',
                 now() + $12::int * interval '1 millisecond', $7::varchar,
                 CASE WHEN $7::varchar IS NULL THEN NULL ELSE now() + $8::int * interval '1 millisecond' END, $13::varchar)
         ON CONFLICT (gid) DO NOTHING
         RETURNING *
       ), b AS (
         INSERT INTO branches (gid, branch_id, seq, participant, action, payload, depends_on, status)
         SELECT g.gid, x.branch_id, x.seq, x.participant, x.action, coalesce(x.payload, '{}'::jsonb), x.depends_on, 'pending'
         FROM g, jsonb_to_recordset($9::jsonb) AS x(branch_id text, seq int, participant text, action text, payload jsonb, depends_on jsonb)
         RETURNING *
       ), e AS (${insertEventsSql('$10')})
       SELECT row_to_json(g.*) AS tx,
              (SELECT coalesce(json_agg(row_to_json(b.*) ORDER BY b.seq), '[]'::json) FROM b) AS branches
       FROM g`,
      [
        input.gid,
        input.mode,
        input.oneShot,
        input.requestHash,
        JSON.stringify(input.metadata),
        input.timeoutMs,
        input.leaseOwner,
        leaseMs,
        JSON.stringify(branches),
        eventsJson(input.events),
        input.concurrent,
        input.firstAttemptInMs,
        input.traceParent,
      ],
    );
    return rows.length === 0 ? null : mapLoaded(rows[0]);
  }

  async load(gid: string): Promise<LoadedTx | null> {
    const rows: { tx: RawRow; branches: RawRow[] }[] = await this.db.query(
      `SELECT row_to_json(t.*) AS tx,
              (SELECT coalesce(json_agg(row_to_json(b.*) ORDER BY b.seq), '[]'::json)
                 FROM branches b WHERE b.gid = t.gid) AS branches
       FROM global_transactions t WHERE t.gid = $1`,
      [gid],
    );
    return rows.length === 0 ? null : mapLoaded(rows[0]);
  }

  /** Several transactions with their branches, in the order of `gids`. */
  async loadMany(gids: string[]): Promise<LoadedTx[]> {
    if (gids.length === 0) return [];
    const rows: { tx: RawRow; branches: RawRow[] }[] = await this.db.query(
      `SELECT row_to_json(t.*) AS tx,
              (SELECT coalesce(json_agg(row_to_json(b.*) ORDER BY b.seq), '[]'::json)
                 FROM branches b WHERE b.gid = t.gid) AS branches
       FROM global_transactions t WHERE t.gid = ANY($1)`,
      [gids],
    );
    const byGid = new Map(rows.map((r) => [String(r.tx.gid), mapLoaded(r)]));
    return gids.flatMap((gid) => byGid.get(gid) ?? []);
  }

  /**
   * Compare-and-set: applies `change` only if the row still has `expectedVersion`.
   * Returns the new global row and the changed branches, or null when another writer won.
   */
  async apply(gid: string, expectedVersion: number, change: TxChange): Promise<{ tx: TxRecord; branches: BranchRecord[] } | null> {
    const branchChanges = change.branches.map((b) => ({
      branch_id: b.branchId,
      status: b.status ?? null,
      calls: b.calls,
      set_result: b.result !== undefined,
      result: b.result ?? null,
      set_error: b.lastError !== undefined,
      last_error: b.lastError ?? null,
    }));
    const rows: { tx: RawRow; branches: RawRow[] }[] = await this.db.query(
      `WITH g AS (
         UPDATE global_transactions SET
           status = $3, reason = $4, version = version + 1, updated_at = now(),
           attempts = coalesce($5::int, attempts),
           needs_attention = needs_attention OR $6::boolean,
           next_attempt_at = CASE WHEN $7::int IS NULL THEN NULL ELSE now() + $7::int * interval '1 millisecond' END,
           lease_owner = $8::varchar,
           lease_until = CASE WHEN $8::varchar IS NULL THEN NULL ELSE now() + $9::int * interval '1 millisecond' END
         WHERE gid = $1 AND version = $2
         RETURNING *
       ), b AS (
         UPDATE branches br SET
           status = coalesce(x.status, br.status),
           attempts = br.attempts + x.calls,
           result = CASE WHEN x.set_result THEN x.result ELSE br.result END,
           last_error = CASE WHEN x.set_error THEN x.last_error ELSE br.last_error END,
           updated_at = now()
         FROM g, jsonb_to_recordset($10::jsonb)
              AS x(branch_id text, status text, calls int, set_result boolean, result jsonb, set_error boolean, last_error jsonb)
         WHERE br.gid = g.gid AND br.branch_id = x.branch_id
         RETURNING br.*
       ), e AS (${insertEventsSql('$11')})
       SELECT row_to_json(g.*) AS tx,
              (SELECT coalesce(json_agg(row_to_json(b.*) ORDER BY b.seq), '[]'::json) FROM b) AS branches
       FROM g`,
      [
        gid,
        expectedVersion,
        change.status,
        change.reason,
        change.attempts ?? null,
        change.needsAttention ?? false,
        change.nextAttemptInMs,
        change.lease?.owner ?? null,
        change.lease?.ms ?? 0,
        JSON.stringify(branchChanges),
        eventsJson(change.events),
      ],
    );
    return rows.length === 0 ? null : mapLoaded(rows[0]);
  }

  /**
   * Records a new branch of an active interactive transaction. It bumps the global version so
   * that a commit decided on the branches read before this insert fails its compare-and-set.
   * Returns null when the transaction is not active or the branch already exists.
   */
  async insertBranch(gid: string, branch: NewBranch, events: EventInput[]): Promise<BranchRecord | null> {
    const rows: { branch: RawRow | null }[] = await this.db.query(
      `WITH g AS (
         UPDATE global_transactions SET version = version + 1, updated_at = now()
         WHERE gid = $1 AND status = 'active'
           AND NOT EXISTS (SELECT 1 FROM branches WHERE gid = $1 AND branch_id = $2)
         RETURNING gid
       ), b AS (
         INSERT INTO branches (gid, branch_id, seq, participant, action, payload, status)
         SELECT g.gid, $2, (SELECT coalesce(max(seq), 0) + 1 FROM branches WHERE gid = $1), $3, $4, $5::jsonb, 'pending'
         FROM g
         ON CONFLICT (gid, branch_id) DO NOTHING
         RETURNING *
       ), e AS (${insertEventsSql('$6')})
       SELECT (SELECT row_to_json(b.*) FROM b) AS branch`,
      [gid, branch.branchId, branch.participant, branch.action, JSON.stringify(branch.payload), eventsJson(events)],
    );
    const raw = rows[0]?.branch;
    return raw ? mapBranch(raw) : null;
  }

  /** Records a phase-1 answer of an interactive branch; only a pending branch changes status. */
  async recordPhase1(
    gid: string,
    branchId: string,
    status: BranchStatus,
    outcome: { result?: Json; lastError?: Json },
    events: EventInput[],
  ): Promise<BranchRecord | null> {
    const rows: { branch: RawRow | null }[] = await this.db.query(
      `WITH g AS (
         UPDATE branches SET
           status = CASE WHEN status = 'pending' THEN $3 ELSE status END,
           attempts = attempts + 1,
           result = CASE WHEN $4::boolean THEN $5::jsonb ELSE result END,
           last_error = CASE WHEN $6::boolean THEN $7::jsonb ELSE last_error END,
           updated_at = now()
         WHERE gid = $1 AND branch_id = $2
         RETURNING *
       ), e AS (${insertEventsSql('$8')})
       SELECT (SELECT row_to_json(g.*) FROM g) AS branch`,
      [
        gid,
        branchId,
        status,
        outcome.result !== undefined,
        JSON.stringify(outcome.result ?? null),
        outcome.lastError !== undefined,
        JSON.stringify(outcome.lastError ?? null),
        eventsJson(events),
      ],
    );
    const raw = rows[0]?.branch;
    return raw ? mapBranch(raw) : null;
  }

  /**
   * Claims up to `limit` transactions due for recovery: `FOR UPDATE SKIP LOCKED` so concurrent
   * instances never claim the same row, a lease so nobody else takes it while we work, and a
   * version bump that fences off the previous holder.
   */
  async claimDue(owner: string, leaseMs: number, limit: number): Promise<LoadedTx[]> {
    const rows: { tx: RawRow; branches: RawRow[] }[] = await this.db.query(
      `WITH claimed AS (
         UPDATE global_transactions t SET
           lease_owner = $1, lease_until = now() + $2::int * interval '1 millisecond',
           next_attempt_at = now() + $2::int * interval '1 millisecond', version = t.version + 1
         WHERE t.gid IN (
           SELECT gid FROM global_transactions
           WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= now()
           ORDER BY next_attempt_at
           LIMIT $3
           FOR UPDATE SKIP LOCKED)
         RETURNING t.*
       )
       SELECT row_to_json(c.*) AS tx,
              (SELECT coalesce(json_agg(row_to_json(b.*) ORDER BY b.seq), '[]'::json)
                 FROM branches b WHERE b.gid = c.gid) AS branches
       FROM claimed c`,
      [owner, leaseMs, limit],
    );
    return rows.map(mapLoaded);
  }

  /** The transaction's history, oldest first (PROTOCOL.md 6). */
  async events(gid: string): Promise<TransactionEventView[]> {
    const rows: RawRow[] = await this.db.query(
      `SELECT at, type, branch_id, from_status, to_status, detail FROM transaction_events WHERE gid = $1 ORDER BY id`,
      [gid],
    );
    return rows.map((r) => ({
      at: toDate(r.at).toISOString(),
      type: String(r.type),
      branchId: (r.branch_id ?? null) as string | null,
      from: (r.from_status ?? null) as string | null,
      to: (r.to_status ?? null) as string | null,
      detail: (r.detail ?? null) as Json,
    }));
  }

}
