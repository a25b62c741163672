import { Inject, Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { SpanContext } from '@opentelemetry/api';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import { LIMITS, type BranchStatus, type GlobalStatus, type StepKind, type TransactionEventView } from '@nest-dtx/protocol';
import type { BranchRecord, EventInput, LoadedTx, MadeDue, NewBranch, NewTransaction, Phase1Outcome, TxChange, TxForAdd, TxRecord } from './records.js';
import { eventRows, mapBranch, mapEvent, mapLoaded, mapTx, toDate, type RawRow } from './rows.js';
import { Batcher, type BatchedOp } from './batcher.js';
import { activeSpanContext, inWriteBatch, tracingOn } from '../telemetry/tracing.js';

export type * from './records.js';

/** A phase-1 answer written with another write of its transaction: a branch's new status, with its result or error. */
export type BranchAnswer = { branchId: string; status: BranchStatus } & Pick<Phase1Outcome, 'result' | 'lastError'>;

/** What one compare-and-set returns: the new global row and the branches it changed. */
export type AppliedChange = { tx: TxRecord; branches: BranchRecord[] };

type WriteKind = 'insert' | 'apply' | 'branch' | 'phase1';

/** A write and, with tracing on, the span it was submitted in (its batch's span links to it). */
type WriteOp = (
  | (BatchedOp<LoadedTx | null> & { kind: 'insert'; row: Record<string, unknown> })
  | (BatchedOp<AppliedChange | null> & { kind: 'apply'; row: Record<string, unknown> })
  | (BatchedOp<BranchRecord | null> & { kind: 'branch'; row: Record<string, unknown> })
  | (BatchedOp<BranchRecord | null> & { kind: 'phase1'; row: Record<string, unknown> })
) & { trace?: SpanContext };

type ReadOp = BatchedOp<LoadedTx | null> & { gid: string };
type AddReadOp = BatchedOp<TxForAdd | null> & { gid: string; branchId: string };

/** How the store batches: set by the app (config), defaults for tests that build a store by hand. */
export interface StoreOptions {
  /** Write batches running at once; what arrives meanwhile waits for the next batch. */
  writeConcurrency?: number;
  /** Operations in one batch at most. */
  maxBatch?: number;
}
export const STORE_OPTIONS = Symbol('STORE_OPTIONS');

/** Batches that ran, and the operations they carried (for `npm run bench` and the tests). */
export interface WriteBatchStats {
  batches: number;
  operations: number;
}

/** One kind of write as SQL: its CTEs (reading its jsonb array, $P), its events, its answer rows. */
interface WritePart {
  ctes: string;
  /** (gid, events) of each of its writes that took effect. */
  events: string;
  /** (kind, k, tx, branches) of each of its writes that took effect. */
  results: string;
}

/**
 * Every write of the hot path, for any mix of transactions: new transactions with their
 * branches, compare-and-set moves with their branches, branches added to interactive
 * transactions, and phase-1 answers of those, each with its history events. A batch's
 * statement holds the parts of the kinds it carries, one jsonb array of rows for each, so one
 * statement and one commit write them all. Each row carries `k`, its place in the batch, so
 * every caller gets back its own row, or none when its compare-and-set lost. A batch holds at
 * most one operation per gid (Batcher), so no two parts of the statement touch the same row.
 *
 * Each composition is prepared once (a named statement) and then runs on a generic plan, which
 * knows nothing of how many rows the arrays hold: `gid = ANY (ARRAY(SELECT gid FROM …))` keeps
 * every update on the primary keys (without it the plan scanned the whole table for every
 * batch, a cost that grew with the log).
 */
/**
 * The two kinds that write a global row with its branches share their tail: `<g>` is the CTE
 * of the global rows written, `<g>_in` its input, `<g>_b` its branches.
 */
function globalRowPart(kind: 'insert' | 'apply', g: 'ins' | 'app', ctes: string): WritePart {
  return {
    ctes: `${ctes},
${g}_b_by_gid AS (
  SELECT b.gid, json_agg(row_to_json(b.*) ORDER BY b.seq) AS branches FROM ${g}_b b GROUP BY b.gid
)`,
    events: `SELECT i.gid, i.events FROM ${g} g JOIN ${g}_in i ON i.gid = g.gid`,
    results: `SELECT '${kind}'::text AS kind, i.k, row_to_json(g.*) AS tx, coalesce(bb.branches, '[]'::json) AS branches
FROM ${g} g JOIN ${g}_in i ON i.gid = g.gid LEFT JOIN ${g}_b_by_gid bb ON bb.gid = g.gid`,
  };
}

const WRITE_PARTS: Record<WriteKind, WritePart> = {
  insert: globalRowPart('insert', 'ins', `
ins_in AS (
  SELECT * FROM jsonb_to_recordset($P::jsonb) AS x(
    k int, gid text, mode text, one_shot boolean, concurrent boolean, request_hash text, metadata jsonb,
    timeout_ms int, first_attempt_ms int, lease_owner text, lease_ms int, trace_parent text, status text, branch_status text,
    check_participant text, check_action text, workflow_participant text, workflow_name text, input jsonb, owner_key text, branches jsonb, events jsonb)
), ins AS (
  INSERT INTO global_transactions
    (gid, mode, status, one_shot, concurrent, request_hash, metadata, timeout_ms, deadline, next_attempt_at, lease_owner, lease_until, trace_parent,
     check_participant, check_action, workflow_participant, workflow_name, input, owner_key_digest)
  SELECT gid, mode, status, one_shot, concurrent, request_hash, metadata, timeout_ms,
         now() + timeout_ms * interval '1 millisecond', now() + first_attempt_ms * interval '1 millisecond', lease_owner,
         CASE WHEN lease_owner IS NULL THEN NULL ELSE now() + lease_ms * interval '1 millisecond' END, trace_parent,
         check_participant, check_action, workflow_participant, workflow_name, input, decode(owner_key, 'hex')
  FROM ins_in ORDER BY gid
  ON CONFLICT (gid) DO NOTHING
  RETURNING *
), ins_b AS (
  INSERT INTO branches (gid, branch_id, seq, participant, action, payload, depends_on, status)
  SELECT g.gid, b.branch_id, b.seq, b.participant, b.action, coalesce(b.payload, '{}'::jsonb), coalesce(b.depends_on, '[]'::jsonb), i.branch_status
  FROM ins g JOIN ins_in i ON i.gid = g.gid,
       jsonb_to_recordset(i.branches) AS b(branch_id text, seq int, participant text, action text, payload jsonb, depends_on jsonb)
  RETURNING *
)`),
  apply: globalRowPart('apply', 'app', `
app_in AS (
  SELECT * FROM jsonb_to_recordset($P::jsonb) AS x(
    k int, gid text, expected int, status text, reason text, attempts int, needs_attention boolean,
    next_ms int, lease_owner text, lease_ms int, set_result boolean, result jsonb, branches jsonb, events jsonb)
), app AS (
  UPDATE global_transactions t SET
    status = a.status, reason = a.reason, version = t.version + 1, updated_at = now(),
    attempts = coalesce(a.attempts, t.attempts),
    needs_attention = t.needs_attention OR a.needs_attention,
    next_attempt_at = CASE WHEN a.next_ms IS NULL THEN NULL ELSE now() + a.next_ms * interval '1 millisecond' END,
    lease_owner = a.lease_owner,
    lease_until = CASE WHEN a.lease_owner IS NULL THEN NULL ELSE now() + a.lease_ms * interval '1 millisecond' END,
    result = CASE WHEN a.set_result THEN a.result ELSE t.result END
  FROM app_in a
  WHERE t.gid = a.gid AND t.version = a.expected AND t.gid = ANY (ARRAY(SELECT gid FROM app_in))
  RETURNING t.*
), app_b AS (
  UPDATE branches br SET
    -- A held phase-1 answer (if_pending) moves only a pending branch, as the phase1 part does.
    status = CASE WHEN x.status IS NULL OR (x.if_pending AND br.status <> 'pending') THEN br.status ELSE x.status END,
    attempts = br.attempts + x.calls,
    result = CASE WHEN x.set_result THEN x.result ELSE br.result END,
    last_error = CASE WHEN x.set_error THEN x.last_error ELSE br.last_error END,
    -- An AT prepare's answer: the rows it locked, held from this write on.
    locks = coalesce(x.locks, br.locks),
    locked_at = CASE WHEN x.locks IS NULL THEN br.locked_at ELSE now() END,
    waiting_since = CASE WHEN x.waiting IS NULL THEN br.waiting_since WHEN x.waiting THEN coalesce(br.waiting_since, now()) ELSE NULL END,
    updated_at = now()
  FROM app g JOIN app_in a ON a.gid = g.gid,
       jsonb_to_recordset(a.branches) AS x(branch_id text, status text, if_pending boolean, calls int, set_result boolean, result jsonb, set_error boolean, last_error jsonb, locks jsonb, waiting boolean)
  WHERE br.gid = g.gid AND br.branch_id = x.branch_id AND br.gid = ANY (ARRAY(SELECT gid FROM app_in))
  RETURNING br.*
)`),
  branch: {
    ctes: `
nb_in AS (
  SELECT * FROM jsonb_to_recordset($P::jsonb) AS x(
    k int, gid text, branch_id text, participant text, action text, payload jsonb, kind text, compensate jsonb, status text, result jsonb, max_branches int, next_ms int,
    answers jsonb, events jsonb)
), nb_g AS (
  -- Bumps the version, so a commit decided on the branches read before this insert fails its compare-and-set.
  -- A workflow's step also puts off its resume (next_ms), never past the deadline.
  UPDATE global_transactions t SET version = t.version + 1, updated_at = now(),
    next_attempt_at = CASE WHEN x.next_ms IS NULL THEN t.next_attempt_at ELSE least(t.deadline, now() + x.next_ms * interval '1 millisecond') END
  FROM nb_in x
  -- status || '' is no index condition, so the plan looks the rows up by gid, not among every active one.
  WHERE t.gid = x.gid AND t.gid = ANY (ARRAY(SELECT gid FROM nb_in)) AND t.status || '' = 'active'
    AND NOT EXISTS (SELECT 1 FROM branches b WHERE b.gid = x.gid AND b.branch_id = x.branch_id)
    -- MAX_BRANCHES_PER_TRANSACTION, also against adds that raced the engine's own check.
    AND (SELECT count(*) FROM branches b WHERE b.gid = x.gid) < x.max_branches
  RETURNING t.gid
), nb AS (
  INSERT INTO branches (gid, branch_id, seq, participant, action, payload, kind, compensate, status, result)
  SELECT x.gid, x.branch_id, (SELECT coalesce(max(b.seq), 0) + 1 FROM branches b WHERE b.gid = x.gid), x.participant, x.action,
         coalesce(x.payload, '{}'::jsonb), x.kind, x.compensate, coalesce(x.status, 'pending'), x.result
  FROM nb_g g JOIN nb_in x ON x.gid = g.gid
  ON CONFLICT (gid, branch_id) DO NOTHING
  RETURNING *
), nb_p1 AS (
  -- The phase-1 answers of earlier steps, written with this one (engine/held-answers.ts), as the
  -- phase1 part writes an answer: only a pending branch changes status. Only when the step went in.
  UPDATE branches br SET
    status = CASE WHEN br.status = 'pending' THEN a.status ELSE br.status END,
    attempts = br.attempts + 1,
    result = CASE WHEN a.set_result THEN a.result ELSE br.result END,
    last_error = CASE WHEN a.set_error THEN a.last_error ELSE br.last_error END,
    updated_at = now()
  FROM nb_g g JOIN nb_in x ON x.gid = g.gid,
       jsonb_to_recordset(coalesce(x.answers, '[]'::jsonb)) AS a(branch_id text, status text, set_result boolean, result jsonb, set_error boolean, last_error jsonb)
  WHERE br.gid = g.gid AND br.branch_id = a.branch_id AND br.gid = ANY (ARRAY(SELECT gid FROM nb_in))
)`,
    events: `SELECT x.gid, x.events FROM nb b JOIN nb_in x ON x.gid = b.gid`,
    results: `SELECT 'branch'::text AS kind, x.k, NULL::json AS tx, json_build_array(row_to_json(b.*)) AS branches FROM nb b JOIN nb_in x ON x.gid = b.gid`,
  },
  phase1: {
    ctes: `
p1_in AS (
  SELECT * FROM jsonb_to_recordset($P::jsonb) AS x(
    k int, gid text, branch_id text, status text, set_result boolean, result jsonb, set_error boolean, last_error jsonb, locks jsonb,
    needs_attention boolean, waiting boolean, ask_again_ms int, events jsonb)
), p1 AS (
  -- Only a pending branch changes status: a phase-1 answer never overwrites a later state.
  UPDATE branches br SET
    status = CASE WHEN br.status = 'pending' THEN x.status ELSE br.status END,
    attempts = br.attempts + 1,
    result = CASE WHEN x.set_result THEN x.result ELSE br.result END,
    last_error = CASE WHEN x.set_error THEN x.last_error ELSE br.last_error END,
    -- The rows an AT prepare locked, with the answer that moves the branch on (as its status).
    locks = CASE WHEN br.status = 'pending' AND x.locks IS NOT NULL THEN x.locks ELSE br.locks END,
    locked_at = CASE WHEN br.status = 'pending' AND x.locks IS NOT NULL THEN now() ELSE br.locked_at END,
    waiting_since = CASE WHEN x.waiting IS NULL THEN br.waiting_since WHEN x.waiting THEN coalesce(br.waiting_since, now()) ELSE NULL END,
    updated_at = now()
  FROM p1_in x
  WHERE br.gid = x.gid AND br.branch_id = x.branch_id AND br.gid = ANY (ARRAY(SELECT gid FROM p1_in))
  RETURNING br.*
), p1_g AS (
  -- An answer recorded only as a marker flags its transaction; an ongoing one makes an active
  -- transaction due when the branch is to be asked again (never later than it was due, nor than
  -- its deadline), unless an instance holds a live lease on it (its next write schedules it).
  -- No version bump: neither is a move.
  UPDATE global_transactions t SET
    needs_attention = t.needs_attention OR x.needs_attention,
    next_attempt_at = CASE
      WHEN x.ask_again_ms IS NULL OR t.status <> 'active' OR (t.lease_owner IS NOT NULL AND t.lease_until > now()) THEN t.next_attempt_at
      ELSE least(t.next_attempt_at, t.deadline, now() + x.ask_again_ms * interval '1 millisecond') END
  FROM p1 b JOIN p1_in x ON x.gid = b.gid AND x.branch_id = b.branch_id
  WHERE (x.needs_attention OR x.ask_again_ms IS NOT NULL) AND t.gid = b.gid
    AND t.gid = ANY (ARRAY(SELECT gid FROM p1_in WHERE needs_attention OR ask_again_ms IS NOT NULL))
)`,
    events: `SELECT x.gid, x.events FROM p1 b JOIN p1_in x ON x.gid = b.gid AND x.branch_id = b.branch_id`,
    results: `SELECT 'phase1'::text AS kind, x.k, NULL::json AS tx, json_build_array(row_to_json(b.*)) AS branches
FROM p1 b JOIN p1_in x ON x.gid = b.gid AND x.branch_id = b.branch_id`,
  },
};

const WRITE_KINDS: readonly WriteKind[] = ['insert', 'apply', 'branch', 'phase1'];

/** The statement for a batch carrying `kinds` (in WRITE_KINDS order), its parameters numbered in that order. */
function writeBatchSql(kinds: readonly WriteKind[]): string {
  const parts = kinds.map((kind, i) => ({ ...WRITE_PARTS[kind], ctes: WRITE_PARTS[kind].ctes.replaceAll('$P', `$${i + 1}`) }));
  return `WITH ${parts.map((p) => p.ctes.trim()).join(',\n')},
ev AS (
  INSERT INTO transaction_events (gid, type, branch_id, from_status, to_status, detail)
  SELECT w.gid, e->>'type', e->>'branch_id', e->>'from_status', e->>'to_status', nullif(e->'detail', 'null'::jsonb)
  FROM (${parts.map((p) => p.events).join('\n    UNION ALL ')}) w,
       jsonb_array_elements(w.events) WITH ORDINALITY AS el(e, n)
  ORDER BY w.gid, el.n
)
${parts.map((p) => p.results).join('\nUNION ALL\n')}`;
}

/** Each composition's text, built once. */
const writeStatements = new Map<string, { name: string; text: string }>();
function writeStatement(kinds: readonly WriteKind[]): { name: string; text: string } {
  const key = kinds.join('+');
  let statement = writeStatements.get(key);
  if (!statement) {
    statement = { name: `dtx_write_${kinds.join('_')}`, text: writeBatchSql(kinds) };
    writeStatements.set(key, statement);
  }
  return statement;
}

/**
 * The transactions as adding a branch needs them (TxForAdd), for a batch of (gid, branchId):
 * each row, its branches' ids and statuses (no payload, no result: the n-th add must not reread
 * the n-1 before it), and the branch of that id if it exists. `k` is the op's 1-based position.
 */
const LOAD_FOR_ADD_SQL = `SELECT x.k, row_to_json(t.*) AS tx,
    (SELECT coalesce(json_agg(json_build_array(b.branch_id, b.status, b.kind, b.waiting_since) ORDER BY b.seq), '[]'::json) FROM branches b WHERE b.gid = t.gid) AS statuses,
    (SELECT row_to_json(b.*) FROM branches b WHERE b.gid = t.gid AND b.branch_id = x.branch_id) AS existing
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(gid, branch_id, k)
  JOIN global_transactions t ON t.gid = x.gid`;

const LOAD_SQL = `
SELECT row_to_json(t.*) AS tx,
       (SELECT coalesce(json_agg(row_to_json(b.*) ORDER BY b.seq), '[]'::json) FROM branches b WHERE b.gid = t.gid) AS branches
FROM global_transactions t WHERE t.gid = ANY($1)`;

/** SQLSTATEs after which the whole statement rolled back and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

/** Postgres answered with an error of the statement itself (not of the connection): it rolled back, nothing was written. */
const statementRolledBack = (error: unknown): boolean => {
  const code = sqlState(error);
  return code !== undefined && !/^(08|57)/.test(code);
};

type LoadedRow = { tx: RawRow; branches: RawRow[] | null };

/**
 * The transaction log in Postgres. Writes go through a group-commit batcher: the writes of
 * concurrent transactions share one statement, hence one round trip and one commit, while each
 * stays a compare-and-set on its own row (`version`, fencing a second instance) whose caller
 * learns whether it won. A promise settles only after the commit, so nothing is answered and no
 * participant called before the write it depends on is durable. Reads of single transactions
 * are batched the same way. The statements are named, so each connection plans them once.
 */
@Injectable()
export class TransactionStore {
  private readonly pool: pg.Pool;
  private readonly writes: Batcher<WriteOp>;
  private readonly reads: Batcher<ReadOp>;
  private readonly addReads: Batcher<AddReadOp>;
  private readSeq = 0;
  readonly stats: WriteBatchStats = { batches: 0, operations: 0 };

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Optional() @Inject(STORE_OPTIONS) options: StoreOptions = {},
  ) {
    // TypeORM's Postgres driver keeps its node-postgres pool as `master`; named statements need it directly.
    this.pool = (db.driver as unknown as { master: pg.Pool }).master;
    const maxBatch = options.maxBatch ?? 200;
    this.writes = new Batcher((batch) => this.flushWrites(batch), { maxInFlight: options.writeConcurrency ?? 2, maxBatch });
    this.reads = new Batcher((batch) => this.flushReads(batch), { maxInFlight: 2, maxBatch });
    this.addReads = new Batcher((batch) => this.flushAddReads(batch), { maxInFlight: 2, maxBatch });
  }

  /** Creates the transaction with its known branches; null when the gid already exists. */
  insert(input: NewTransaction, leaseMs: number): Promise<LoadedTx | null> {
    return this.write<LoadedTx | null>('insert', input.gid, {
      gid: input.gid,
      mode: input.mode,
      one_shot: input.oneShot,
      concurrent: input.concurrent,
      request_hash: input.requestHash,
      metadata: input.metadata,
      timeout_ms: input.timeoutMs,
      first_attempt_ms: input.firstAttemptInMs,
      lease_owner: input.leaseOwner,
      lease_ms: leaseMs,
      trace_parent: input.traceParent,
      status: input.status ?? 'active',
      branch_status: input.branchStatus ?? 'pending',
      check_participant: input.check?.participant ?? null,
      check_action: input.check?.action ?? null,
      workflow_participant: input.workflow?.participant ?? null,
      workflow_name: input.workflow?.name ?? null,
      input: input.input ?? null,
      owner_key: input.ownerKeyDigest ? input.ownerKeyDigest.toString('hex') : null,
      branches: input.branches.map((b, i) => ({
        branch_id: b.branchId,
        seq: i + 1,
        participant: b.participant,
        action: b.action,
        payload: b.payload,
        depends_on: b.dependsOn ?? [],
      })),
      events: eventRows(input.events),
    });
  }

  /**
   * Compare-and-set: applies `change` only if the row still has `expectedVersion`.
   * Returns the new global row and the changed branches, or null when another writer won.
   */
  apply(gid: string, expectedVersion: number, change: TxChange): Promise<AppliedChange | null> {
    return this.write<AppliedChange | null>('apply', gid, {
      gid,
      expected: expectedVersion,
      status: change.status,
      reason: change.reason,
      attempts: change.attempts ?? null,
      needs_attention: change.needsAttention ?? false,
      next_ms: change.nextAttemptInMs,
      lease_owner: change.lease?.owner ?? null,
      lease_ms: change.lease?.ms ?? 0,
      set_result: change.result !== undefined,
      result: change.result ?? null,
      branches: change.branches.map((b) => ({
        branch_id: b.branchId,
        status: b.status ?? null,
        if_pending: b.ifPending ?? false,
        calls: b.calls,
        set_result: b.result !== undefined,
        result: b.result ?? null,
        set_error: b.lastError !== undefined,
        last_error: b.lastError ?? null,
        // Only on an AT prepare's answer: every other branch row stays as it was.
        ...(b.locks ? { locks: b.locks } : {}),
        ...(b.waiting === undefined ? {} : { waiting: b.waiting }),
      })),
      events: eventRows(change.events),
    });
  }

  /**
   * Records a new branch of an active interactive transaction, bumping the global version, with
   * `answers`: phase-1 answers of its other branches, written in the same statement (a
   * workflow's held step answers). Returns null, writing nothing, when the transaction is not
   * active, the branch already exists, or the transaction already holds `maxBranches` branches.
   */
  insertBranch(
    gid: string,
    branch: NewBranch,
    events: EventInput[],
    maxBranches: number = LIMITS.maxBranches,
    nextAttemptInMs: number | null = null,
    answers: readonly BranchAnswer[] = [],
  ): Promise<BranchRecord | null> {
    return this.write<BranchRecord | null>('branch', gid, {
      gid,
      branch_id: branch.branchId,
      participant: branch.participant,
      action: branch.action,
      payload: branch.payload,
      kind: branch.kind ?? null,
      compensate: branch.compensate ?? null,
      status: branch.status ?? null,
      result: branch.result ?? null,
      max_branches: maxBranches,
      next_ms: nextAttemptInMs,
      answers: answers.map((a) => ({
        branch_id: a.branchId,
        status: a.status,
        set_result: a.result !== undefined,
        result: a.result ?? null,
        set_error: a.lastError !== undefined,
        last_error: a.lastError ?? null,
      })),
      events: eventRows(events),
    });
  }

  /**
   * Records a phase-1 answer of an interactive branch, with the rows an AT prepare locked; only
   * a pending branch changes status (or takes the locks).
   */
  recordPhase1(gid: string, branchId: string, status: BranchStatus, outcome: Phase1Outcome, events: EventInput[]): Promise<BranchRecord | null> {
    return this.write<BranchRecord | null>('phase1', gid, {
      gid,
      branch_id: branchId,
      status,
      set_result: outcome.result !== undefined,
      result: outcome.result ?? null,
      set_error: outcome.lastError !== undefined,
      last_error: outcome.lastError ?? null,
      ...(outcome.locks ? { locks: outcome.locks } : {}),
      needs_attention: outcome.needsAttention ?? false,
      ...(outcome.waiting === undefined ? {} : { waiting: outcome.waiting }),
      ask_again_ms: outcome.askAgainInMs ?? null,
      events: eventRows(events),
    });
  }

  load(gid: string): Promise<LoadedTx | null> {
    return new Promise((resolve, reject) => this.reads.submit({ key: `${this.readSeq++}`, gid, resolve, reject }));
  }

  /**
   * The transaction as adding `branchId` needs it (TxForAdd): the other branches' ids,
   * statuses, kinds and waits only, so the n-th add reads no payload or result of the n-1 before it.
   */
  loadForAdd(gid: string, branchId: string): Promise<TxForAdd | null> {
    // Batched like load(): the adds of concurrent interactive transactions share one round trip.
    return new Promise((resolve, reject) => this.addReads.submit({ key: `${this.readSeq++}`, gid, branchId, resolve, reject }));
  }

  /** Several transactions with their branches, in the order of `gids`. */
  async loadMany(gids: string[]): Promise<LoadedTx[]> {
    if (gids.length === 0) return [];
    const byGid = await this.loadRows(gids);
    return gids.flatMap((gid) => byGid.get(gid) ?? []);
  }

  /**
   * Claims up to `limit` transactions due for recovery: `FOR UPDATE SKIP LOCKED` so concurrent
   * instances never claim the same row, a lease so nobody else takes it while we work, and a
   * version bump that fences off the previous holder.
   */
  async claimDue(owner: string, leaseMs: number, limit: number): Promise<LoadedTx[]> {
    const { rows } = await this.pool.query<LoadedRow & { claimed_at: Date | string }>({
      name: 'dtx_claim_due',
      text: `WITH claimed AS (
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
                 FROM branches b WHERE b.gid = c.gid) AS branches,
              now() AS claimed_at
       FROM claimed c`,
      values: [owner, leaseMs, limit],
    });
    return rows.map((row) => ({ ...mapLoaded(row), claimedAt: toDate(row.claimed_at) }));
  }

  /**
   * The operator's "retry now" (only TransactionWriter.makeDue calls it): makes a decided (or
   * running saga, or active workflow: its host is resumed) transaction due now, with a version bump and an `admin_retry` event, unless an
   * instance holds a live lease on it. That instance is driving it already, and taking the row
   * from it here would fence it off in the database only: its in-memory lease would live on, and
   * it could send one more round under an out-of-date version (the model's ADMIN_RETRY_OVER_LEASE
   * mutant). One statement, hence one commit. Outside the write batcher: it is rare, and its
   * answer (which of three) is not a compare-and-set's.
   */
  async makeDue(gid: string): Promise<MadeDue> {
    const rows: { made_due: GlobalStatus | null; leased: boolean }[] = await this.db.query(
      `WITH g AS (
         UPDATE global_transactions SET next_attempt_at = now(), lease_owner = NULL, lease_until = NULL,
                version = version + 1, updated_at = now()
         WHERE gid = $1 AND next_attempt_at IS NOT NULL AND (status IN ('committing', 'rolling_back') OR mode IN ('saga', 'workflow'))
           AND (lease_owner IS NULL OR lease_until <= now())
         RETURNING gid, status
       ), e AS (
         INSERT INTO transaction_events (gid, type, detail) SELECT gid, 'admin_retry', '{}'::jsonb FROM g
       )
       SELECT (SELECT status FROM g) AS made_due,
              EXISTS (SELECT 1 FROM global_transactions
                      WHERE gid = $1 AND next_attempt_at IS NOT NULL AND (status IN ('committing', 'rolling_back') OR mode IN ('saga', 'workflow'))
                        AND lease_owner IS NOT NULL AND lease_until > now()) AS leased`,
      [gid],
    );
    const [row] = rows;
    if (row.made_due !== null) return { outcome: 'due', status: row.made_due };
    return { outcome: row.leased ? 'leased' : 'not_retryable' };
  }

  /** The transaction's history, oldest first (PROTOCOL.md 6). */
  async events(gid: string): Promise<TransactionEventView[]> {
    const rows: RawRow[] = await this.db.query(
      `SELECT at, type, branch_id, from_status, to_status, detail FROM transaction_events WHERE gid = $1 ORDER BY id`,
      [gid],
    );
    return rows.map(mapEvent);
  }

  private write<T>(kind: WriteKind, gid: string, row: Record<string, unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.writes.submit({ kind, key: gid, row, resolve: resolve as (value: never) => void, reject, trace: activeSpanContext() });
    });
  }

  private async flushWrites(batch: WriteOp[]): Promise<void> {
    let rows: (LoadedRow & { kind: WriteKind; k: number })[];
    try {
      rows = tracingOn() ? await inWriteBatch(batch.map((op) => op.trace), batch.map((op) => op.kind), () => this.runWriteBatch(batch)) : await this.runWriteBatch(batch);
    } catch (error) {
      if (batch.length === 1 || !statementRolledBack(error)) {
        // A lost connection leaves the outcome unknown: every caller hears of it, none is run again.
        for (const op of batch) op.reject(error);
        return;
      }
      // The statement failed whole (bad data in one operation, say): run each alone, so only its own caller sees the error.
      await Promise.all(batch.map((op) => this.flushWrites([op])));
      return;
    }
    this.stats.batches++;
    this.stats.operations += batch.length;
    const found = new Map(rows.map((r) => [`${r.kind}:${r.k}`, r]));
    batch.forEach((op, k) => {
      const row = found.get(`${op.kind}:${k}`);
      if (!row) return op.resolve(null);
      switch (op.kind) {
        case 'insert':
          return op.resolve(mapLoaded(row));
        case 'apply':
          return op.resolve({ tx: mapTx(row.tx), branches: (row.branches ?? []).map(mapBranch) });
        case 'branch':
        case 'phase1':
          return op.resolve(mapBranch((row.branches ?? [])[0]));
      }
    });
  }

  private async runWriteBatch(batch: WriteOp[]): Promise<(LoadedRow & { kind: WriteKind; k: number })[]> {
    const rows: Record<WriteKind, Record<string, unknown>[]> = { insert: [], apply: [], branch: [], phase1: [] };
    batch.forEach((op, k) => rows[op.kind].push({ ...op.row, k }));
    const kinds = WRITE_KINDS.filter((kind) => rows[kind].length > 0);
    const { name, text } = writeStatement(kinds);
    const values = kinds.map((kind) => JSON.stringify(rows[kind]));
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.pool.query<LoadedRow & { kind: WriteKind; k: number }>({ name, text, values });
        return result.rows;
      } catch (error) {
        // A deadlock with another instance's batch or claim: the statement rolled back whole; run it again.
        const code = sqlState(error);
        if (attempt >= 5 || code === undefined || !RETRYABLE.has(code)) throw error;
      }
    }
  }

  private async flushReads(batch: ReadOp[]): Promise<void> {
    try {
      const byGid = await this.loadRows([...new Set(batch.map((op) => op.gid))]);
      for (const op of batch) op.resolve(byGid.get(op.gid) ?? null);
    } catch (error) {
      for (const op of batch) op.reject(error);
    }
  }

  private async flushAddReads(batch: AddReadOp[]): Promise<void> {
    try {
      const { rows } = await this.pool.query<{ k: number; tx: RawRow; statuses: [string, BranchStatus, StepKind | null, string | null][]; existing: RawRow | null }>({
        name: 'dtx_load_for_add',
        text: LOAD_FOR_ADD_SQL,
        values: [batch.map((op) => op.gid), batch.map((op) => op.branchId)],
      });
      const byIndex = new Map(rows.map((row) => [Number(row.k), row]));
      batch.forEach((op, index) => {
        const row = byIndex.get(index + 1);
        op.resolve(
          row
            ? {
                tx: mapTx(row.tx),
                branches: row.statuses.map(([id, status, kind, waitingSince]) => ({
                  branchId: id,
                  status,
                  ...(kind ? { kind } : {}),
                  ...(waitingSince ? { waitingSince: toDate(waitingSince) } : {}),
                })),
                existing: row.existing ? mapBranch(row.existing) : null,
              }
            : null,
        );
      });
    } catch (error) {
      for (const op of batch) op.reject(error);
    }
  }

  private async loadRows(gids: string[]): Promise<Map<string, LoadedTx>> {
    const { rows } = await this.pool.query<LoadedRow>({ name: 'dtx_load', text: LOAD_SQL, values: [gids] });
    return new Map(rows.map((r) => [String(r.tx.gid), mapLoaded(r)]));
  }
}
