import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import {
  answerSlot,
  barrierDecision,
  barrierInserts,
  barrierKind,
  barrierOutcome,
  ongoingOutcome,
  slotToRead,
  type BarrierKind,
  type BarrierOutcome,
  type BarrierRunOptions,
  type FoundRow,
} from './barrier-rules.js';
import { BarrierSql, type StoredRow } from './barrier-sql.js';
import { BusinessFailure } from './business-failure.js';
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  type AtDataLayer,
  type BusinessAnswer,
  type BusinessWork,
  type DataLayerOptions,
  type DtxDataLayer,
  type XaDataLayer,
} from './data-layer.js';
import { isOngoingAnswer } from './ongoing-answer.js';
import { SqlSchema, type SchemaNeeds } from './schema.js';
import { SqlAt } from './sql-at.js';
import type { SqlDriver, SqlRun } from './sql.js';
import { SqlXa } from './sql-xa.js';
import { storedAnswerText } from './stored-answer.js';

/** A failure the business method reported, as the barrier answers it. */
export function failedOutcome(error: BusinessFailure): BarrierOutcome {
  return { kind: 'failed', message: error.message, details: error.details };
}

/** What the barrier's own statements need of the schema. */
const BARRIER_NEEDS = { at: false } as const;

/** Work inside a barrier phase's local transaction that also runs statements of its own (AT mode). */
export type PhaseWork<Tx> = (run: SqlRun, handle: Tx) => Promise<BusinessAnswer>;

/** What the rules read of a stored row. */
const found = (row: StoredRow | null): FoundRow | null => (row ? { origin: row.origin, answer: row.answer.kind } : null);

/**
 * The barrier on a SQL database, through any library's local transactions: the rules of
 * barrier-rules.ts as statements of barrier-sql.ts, run by the adapter's driver.
 */
export class SqlDataLayer<Tx> implements DtxDataLayer<Tx> {
  readonly description: string;
  readonly xa?: XaDataLayer<Tx>;
  readonly at?: AtDataLayer<Tx>;
  private readonly sql: BarrierSql;
  private readonly schema: SqlSchema;
  private readonly lockTimeoutMs: number;

  constructor(
    private readonly driver: SqlDriver<Tx>,
    options: DataLayerOptions = {},
  ) {
    this.sql = new BarrierSql(driver.dialect);
    this.schema = new SqlSchema(driver, driver.schemaFix);
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    // Checked now, not at the first call.
    this.sql.lockTimeout(this.lockTimeoutMs);
    this.description = `${driver.library} (${driver.dialect === 'postgres' ? 'Postgres' : 'MySQL/MariaDB'})`;
    if (driver.session) this.xa = new SqlXa(driver, this.sql, this.lockTimeoutMs, this.schema);
    if (driver.dialect === 'postgres') this.at = new SqlAt(driver, this.sql, (call, work) => this.runPhaseWith(call, work), this.schema);
  }

  checkSchema(needs: SchemaNeeds): Promise<string | null> {
    return this.schema.check(needs);
  }

  runPhase(call: PhaseCallBody, work: BusinessWork<Tx>, options?: BarrierRunOptions): Promise<BarrierOutcome> {
    return this.schema.explain(BARRIER_NEEDS, () => this.runPhaseWith(call, (_run, handle) => work(handle), options));
  }

  /** runPhase, for work that also runs statements in the phase's local transaction. */
  async runPhaseWith(call: PhaseCallBody, work: PhaseWork<Tx>, options?: BarrierRunOptions): Promise<BarrierOutcome> {
    // Before the transaction: an undo rule asked for a phase that is no rollback is a bug, not a database error.
    const kind = barrierKind(call.phase, options);
    try {
      return await this.driver.transaction((run, handle) => this.phaseInTransaction(run, handle, call, kind, work));
    } catch (error) {
      if (error instanceof BusinessFailure) return failedOutcome(error);
      throw error;
    }
  }

  private async phaseInTransaction(run: SqlRun, handle: Tx, call: PhaseCallBody, kind: BarrierKind, work: PhaseWork<Tx>): Promise<BarrierOutcome> {
    await run(this.sql.lockTimeout(this.lockTimeoutMs));
    const inserted: boolean[] = [];
    for (const insert of barrierInserts(kind)) inserted.push((await run(this.sql.insert(call, insert))).affected > 0);
    const slot = slotToRead(kind, inserted);
    let row = slot ? BarrierSql.storedRow((await run(this.sql.selectSlot(call, slot, 'read'))).rows[0]) : null;
    let decision = barrierDecision(kind, inserted, found(row));
    if (decision.kind === 'run' && slot && row) {
      // A run again over an ongoing answer: lock the row, and decide on what it holds now (a
      // repeat or a rollback that held it may have changed it meanwhile). Only then, so that
      // duplicates of a finished phase (the common repeat) take no lock.
      row = BarrierSql.storedRow((await run(this.sql.selectSlot(call, slot, 'update'))).rows[0]);
      decision = barrierDecision(kind, inserted, found(row));
    }
    const stored = row?.answer.kind === 'final' ? row.answer.result : null;
    if (decision.kind !== 'run') return barrierOutcome(call, decision, stored);
    if (decision.takesOverOngoingPhase1) await this.takeOverOngoingPhase1(run, call);
    const answer = await work(run, handle);
    const own = answerSlot(kind);
    if (isOngoingAnswer(answer)) {
      // Committed with what the work wrote: the marker makes the same call run the work again.
      if (own) await run(this.sql.storeAnswer(call, own, storedAnswerText({ kind: 'ongoing' })));
      return ongoingOutcome(answer);
    }
    const result: Json = answer ?? null;
    if (decision.storesResult && own) await run(this.sql.storeAnswer(call, own, storedAnswerText({ kind: 'final', result })));
    return barrierOutcome(call, decision, result);
  }

  /**
   * A rollback whose phase 1 ran takes that phase 1 over if it is still ongoing. Read first, with
   * a lock that goes with the ones other calls for the branch hold: the update's exclusive row
   * lock, taken by every rollback, would make identical rollbacks that run at once deadlock on
   * MySQL/MariaDB (each holds a shared lock on the phase-1 row from its insert, and waits for the
   * others'). A phase 1 that answered for good never becomes ongoing again, so reading it final
   * settles it; the update itself checks again that it is ongoing.
   */
  private async takeOverOngoingPhase1(run: SqlRun, call: PhaseCallBody): Promise<void> {
    const phase1 = BarrierSql.storedRow((await run(this.sql.selectSlot(call, 'phase1', 'read'))).rows[0]);
    if (phase1?.origin === 'phase1' && phase1.answer.kind === 'ongoing') await run(this.sql.takeOverOngoingPhase1(call));
  }

  deleteExpiredBarrierRows(retentionMs: number, batchSize: number): Promise<number> {
    return this.schema.explain(BARRIER_NEEDS, () => this.deleteExpired(retentionMs, batchSize));
  }

  private async deleteExpired(retentionMs: number, batchSize: number): Promise<number> {
    if (this.driver.dialect === 'postgres') {
      const { rows } = await this.driver.run(this.sql.deleteExpired(retentionMs, batchSize));
      return Number(rows[0]?.removed ?? 0);
    }
    return this.driver.transaction(async (run) => {
      const { rows } = await run(this.sql.selectExpired(retentionMs, batchSize));
      if (rows.length === 0) return 0;
      const keys = rows.map((row) => ({ gid: String(row.gid), branch_id: String(row.branch_id), phase: String(row.phase) }));
      return (await run(this.sql.deleteRows(keys))).affected;
    });
  }
}

/** The data layer of a SQL library adapter's driver. */
export function sqlDataLayer<Tx>(driver: SqlDriver<Tx>, options?: DataLayerOptions): DtxDataLayer<Tx> {
  return new SqlDataLayer(driver, options);
}
