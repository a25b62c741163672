import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome, BarrierRunOptions } from './barrier-rules.js';
import type { BranchKey } from './barrier-sql.js';
import type { OngoingAnswer } from './ongoing-answer.js';
import type { SchemaNeeds } from './schema.js';

/**
 * What a business method answers: a result (returning nothing is the JSON null), or `ongoing()`
 * when its outcome is not known yet (PROTOCOL.md 3.6). A refusal is thrown (BusinessFailure).
 */
export type BusinessAnswer = Json | void | OngoingAnswer;

/** A business method's work, given the data layer's transactional handle. */
export type BusinessWork<Tx> = (tx: Tx) => Promise<BusinessAnswer>;

/**
 * Where a participant keeps its state, as the SDK sees it: the barrier (every phase
 * idempotent, null compensation, anti-hanging) around the business work, the retention of the
 * barrier's rows and, where the database has them, prepared (XA) transactions. Made by one of
 * the adapters (`typeormDataLayer`, `pgDataLayer`, `mysql2DataLayer`, `prismaDataLayer`,
 * `drizzleDataLayer`, `kyselyDataLayer`, `mikroOrmDataLayer`, `redisDataLayer`) and given to
 * DtxParticipantModule as its `dataLayer` option. `Tx` is the library's own transactional handle
 * that the business method receives as `context.tx`.
 */
export interface DtxDataLayer<Tx = unknown> {
  /** What it is, for messages: `TypeORM (postgres)`, `mysql2`, `Redis`... */
  readonly description: string;
  /**
   * Runs one phase call through the barrier: in one local transaction, the barrier's rows and,
   * when the rules say so, the business work. A BusinessFailure thrown by the work rolls both
   * back and is answered `failed`; any other error rolls back and propagates (a transient 5xx).
   * Work that answers `ongoing()` commits with the ongoing marker in its slot, answered
   * `ongoing`: the same call runs the work again (barrier-rules.ts). `options.kind` `undo`: a
   * rollback phase that compensates work with no phase 1 here by design (a workflow's local
   * step, `@LocalStepCompensation`), run by the barrier's `undo` rule rather than `rollback`.
   */
  runPhase(call: PhaseCallBody, work: BusinessWork<Tx>, options?: BarrierRunOptions): Promise<BarrierOutcome>;
  /**
   * Deletes at most `batchSize` barrier rows of branches whose rows are all older than
   * `retentionMs` (on the database's clock); returns how many it deleted.
   */
  deleteExpiredBarrierRows(retentionMs: number, batchSize: number): Promise<number>;
  /**
   * Set when the store expires barrier rows itself (Redis, after the layer's own `retentionMs`):
   * the participant's retention job does not run, and its `barrierRetentionMs` does not apply.
   */
  readonly expiresRowsItself?: boolean;
  /**
   * What of the SDK's schema in the database is missing (the barrier table and the columns it
   * uses; with `at`, AT mode's tables and functions), as one line that names it and the fix for
   * this library; null when nothing is. The participant asks at start-up. Absent where there is
   * no schema to make (Redis). A phase that fails because the schema is missing throws
   * DtxSchemaError with the same line.
   */
  checkSchema?(needs: SchemaNeeds): Promise<string | null>;
  /** Prepared (XA) transactions, when the database and the library allow them; else XaAction is refused at start-up. */
  readonly xa?: XaDataLayer<Tx>;
  /** AT mode (undo log and row locks by triggers), on Postgres; else AtAction is refused at start-up. */
  readonly at?: AtDataLayer<Tx>;
}

/** A row of a table an AT action writes, by its primary key: `{ id: 7 }`. */
export interface AtRowRef {
  table: string;
  key: Record<string, unknown>;
}

/** What the AT installation found of a table, for start-up messages. */
export interface AtTable {
  /** `schema.table`, as the locks name it. */
  name: string;
  keyColumns: string[];
  /** Whether its triggers were installed (or replaced) now. */
  installed: boolean;
}

/**
 * AT mode on the participant's database: the business work runs as written, and row triggers
 * on the tables it may write record how to undo it and lock the rows for the global
 * transaction (see at-sql.ts). From the coordinator's side an AT action is a 2PC action.
 */
export interface AtDataLayer<Tx = unknown> {
  /**
   * Checks the AT schema is there and puts the capture triggers on `tables` (`installTriggers`
   * false: only checks they are there). Throws one line when something is missing.
   */
  install(tables: readonly string[], options: { installTriggers: boolean }): Promise<AtTable[]>;
  /**
   * Phase 1: in one local transaction, the barrier row, the branch's identity, the work (whose
   * writes the triggers capture and lock) and the result; committed locally. A row another
   * global transaction holds makes the whole local transaction roll back and run again after a
   * pause, for up to `lockWaitMs`; then it fails (a business failure: the global transaction
   * rolls back cleanly). A success carries the locks it holds.
   */
  prepare(call: PhaseCallBody, work: BusinessWork<Tx>, options: { lockWaitMs: number }): Promise<BarrierOutcome>;
  /** Phase 2 commit: the barrier's commit row, which releases the locks at once; undo and lock rows go later (deleteCommitted). */
  commit(call: PhaseCallBody): Promise<BarrierOutcome>;
  /**
   * Phase 2 rollback: restores the before images, newest first, each only if the row still
   * equals its after image, then deletes the undo and lock rows; a row that does not fails the
   * rollback (409, nothing restored, locks kept) with the difference in its details.
   */
  rollback(call: PhaseCallBody): Promise<BarrierOutcome>;
  /** Deletes the undo and lock rows of committed branches; returns how many of each. */
  deleteCommitted(keys: readonly BranchKey[]): Promise<{ undo: number; locks: number }>;
  /** Committed branches whose undo or lock rows are still there (a crash before deleteCommitted), at most `limit`. */
  committedLeftovers(limit: number): Promise<BranchKey[]>;
  /**
   * A read that must not see what a global transaction has changed but not yet decided: in one
   * local transaction, locks `rows` (FOR SHARE, or FOR UPDATE), and only if no global
   * transaction holds any of them runs `read`; otherwise lets them go, waits and tries again,
   * for up to `waitMs`, then throws AtRowLockedError.
   */
  readUnlocked<T>(rows: readonly AtRowRef[], read: (tx: Tx) => Promise<T>, options: { waitMs: number; forUpdate: boolean }): Promise<T>;
}

/**
 * 2PC on the database's own prepared transactions. Prepare runs the business work in a local
 * transaction that ends prepared instead of committed: durable but invisible, holding its
 * locks, until the coordinator decides. Commit and rollback are idempotent. A participant never
 * finishes its prepared transactions on its own: after a restart it only lists them.
 */
export interface XaDataLayer<Tx = unknown> {
  prepare(participant: string, call: PhaseCallBody, work: BusinessWork<Tx>): Promise<BarrierOutcome>;
  commit(participant: string, call: PhaseCallBody): Promise<BarrierOutcome>;
  rollback(participant: string, call: PhaseCallBody): Promise<BarrierOutcome>;
  /** This participant's prepared transactions, left for the coordinator to finish. */
  listOwn(participant: string): Promise<string[]>;
}

/** Options every data layer takes. */
export interface DataLayerOptions {
  /**
   * How long a phase waits for a row lock before it fails (a transient failure the coordinator
   * retries). Default 5 s. A row held by another branch (a prepared 2PC transaction, say) must
   * not pin a connection forever, or the pool fills with waiters and nothing, not even the
   * commit that would release the row, gets a connection. MySQL and MariaDB count it in whole
   * seconds (rounded up).
   */
  lockTimeoutMs?: number;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
