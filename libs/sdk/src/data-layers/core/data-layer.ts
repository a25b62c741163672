import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from './barrier-rules.js';

/** A business method's work, given the data layer's transactional handle. */
export type BusinessWork<Tx> = (tx: Tx) => Promise<Json | void>;

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
   */
  runPhase(call: PhaseCallBody, work: BusinessWork<Tx>): Promise<BarrierOutcome>;
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
  /** Prepared (XA) transactions, when the database and the library allow them; else XaAction is refused at start-up. */
  readonly xa?: XaDataLayer<Tx>;
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
