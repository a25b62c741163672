import { setTimeout as sleep } from 'node:timers/promises';
import { AT_LOCKS_REPORTED, type BranchLocks, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import {
  AT_LOCK_CONFLICT_MARK,
  AT_LOCK_CONFLICT_SQLSTATE,
  AT_ROW_LOCKED_MARK,
  AT_ROW_LOCKED_SQLSTATE,
  AtSql,
  type AtTableInfo,
} from './at-sql.js';
import type { BarrierOutcome } from './barrier-rules.js';
import type { BarrierSql, BranchKey } from './barrier-sql.js';
import { BusinessFailure } from './business-failure.js';
import type { AtDataLayer, AtRowRef, AtTable, BusinessWork } from './data-layer.js';
import { errorChain } from './driver-errors.js';
import { finalAnswer } from './ongoing-answer.js';
import type { SqlSchema } from './schema.js';
import type { SqlDriver, SqlRun } from './sql.js';

/** Runs a barrier phase whose work also runs statements (SqlDataLayer.runPhaseWith). */
type BarrierPhaseRunner<Tx> = (call: PhaseCallBody, work: (run: SqlRun, handle: Tx) => Promise<Json | void>) => Promise<BarrierOutcome>;

/** A row a global transaction holds, met by a read that must not see it (AtLocks.readUnlocked). */
export class AtRowLockedError extends Error {
  constructor(
    message: string,
    readonly table: string,
    readonly key: string,
    readonly gid: string,
  ) {
    super(message);
    this.name = 'AtRowLockedError';
  }
}

/** What AT mode's statements need: the barrier table and AT's own tables and functions. */
const AT_NEEDS = { at: true } as const;

/** The pause before the next attempt on a locked row: 5 ms doubling to 100 ms, with jitter. */
function pauseAfter(attempt: number): number {
  const capped = Math.min(100, 5 * 2 ** attempt);
  return capped / 2 + Math.random() * (capped / 2);
}

/** Whether an error is the trigger's: a row held by another global transaction, or a plain write refused. */
export function atLockError(error: unknown): 'conflict' | 'row_locked' | null {
  for (const record of errorChain(error)) {
    const code = record.code ?? record.sqlState;
    const message = typeof record.message === 'string' ? record.message : '';
    if (code === AT_LOCK_CONFLICT_SQLSTATE || message.includes(AT_LOCK_CONFLICT_MARK)) return 'conflict';
    if (code === AT_ROW_LOCKED_SQLSTATE || message.includes(AT_ROW_LOCKED_MARK)) return 'row_locked';
  }
  return null;
}

/**
 * Whether an error is a plain write refused because a global transaction holds the row (AT
 * mode's no-dirty-write rule): an app maps it to its own answer (409, say) rather than a 500.
 */
export function isAtRowLocked(error: unknown): boolean {
  return atLockError(error) === 'row_locked';
}

/** The text of the trigger's message, from wherever the library put the driver's error. */
function lockMessage(error: unknown): string {
  for (const record of errorChain(error)) {
    const message = typeof record.message === 'string' ? record.message : '';
    const at = message.indexOf(AT_LOCK_CONFLICT_MARK);
    if (at >= 0) return message.slice(at + AT_LOCK_CONFLICT_MARK.length + 2).split('\n')[0] ?? message;
  }
  return 'a row is locked by another global transaction';
}

/**
 * AT mode on Postgres, through any library's local transactions (the statements of at-sql.ts,
 * run by the adapter's driver).
 */
export class SqlAt<Tx> implements AtDataLayer<Tx> {
  /** The tables as installed, by the name they were declared with. */
  private readonly tables = new Map<string, AtTableInfo>();

  constructor(
    private readonly driver: SqlDriver<Tx>,
    private readonly barrier: BarrierSql,
    private readonly runBarrierPhase: BarrierPhaseRunner<Tx>,
    private readonly schema: SqlSchema,
  ) {}

  async install(tables: readonly string[], { installTriggers }: { installTriggers: boolean }): Promise<AtTable[]> {
    const present = (await this.driver.run(AtSql.schemaPresent())).rows[0]?.present === true;
    if (!present) {
      throw new Error(
        'AT mode needs its tables and functions (dtx_at_undo, dtx_at_lock, dtx_at_capture...): add the SDK migrations (dtxMigrations with TypeORM) or run atSchemaDdl() in yours',
      );
    }
    const installed: AtTable[] = [];
    const missing: string[] = [];
    await this.driver.transaction(async (run) => {
      await run(AtSql.installLock());
      for (const table of tables) {
        const row = (await run(AtSql.tableInfo(table))).rows[0];
        if (!row) throw new Error(`AT table ${table} does not exist`);
        const info = AtSql.readTableInfo(row);
        if (info.keyColumns.length === 0) throw new Error(`AT table ${table} has no primary key: its rows could not be locked nor restored`);
        const current = info.triggerArgs !== null && info.triggerArgs.join('\u0000') === info.keyColumns.join('\u0000') && info.hasTruncateTrigger;
        if (!current && installTriggers) for (const ddl of AtSql.installTriggers(info)) await run(ddl);
        else if (!current) missing.push(info.name);
        this.tables.set(table, info);
        installed.push({ name: info.name, keyColumns: info.keyColumns, installed: !current && installTriggers });
      }
    });
    if (missing.length > 0) {
      throw new Error(`AT tables ${missing.join(', ')} have no (or out-of-date) capture triggers, and installTriggers is false: install them (see atTriggerDdl)`);
    }
    return installed;
  }

  prepare(call: PhaseCallBody, work: BusinessWork<Tx>, options: { lockWaitMs: number }): Promise<BarrierOutcome> {
    return this.schema.explain(AT_NEEDS, () => this.prepareWaiting(call, work, options));
  }

  private async prepareWaiting(call: PhaseCallBody, work: BusinessWork<Tx>, { lockWaitMs }: { lockWaitMs: number }): Promise<BarrierOutcome> {
    const giveUpAt = performance.now() + lockWaitMs;
    for (let attempt = 0; ; attempt++) {
      let locks: BranchLocks | undefined;
      try {
        const outcome = await this.runBarrierPhase(call, async (run, handle) => {
          await run(AtSql.setBranch(call));
          // An AT phase 1 takes its undo log and row locks in this one local transaction: it cannot
          // answer ongoing (a participant bug, thrown: nothing it wrote is kept).
          const result = finalAnswer(await work(handle), 'AtAction');
          // The locks are taken as rows are written: a unit of work (MikroORM) writes at its flush.
          await this.driver.flush?.(handle);
          locks = await this.locksOf(run, call);
          return result;
        });
        if (outcome.kind !== 'ok') return outcome;
        // A replay (the answer to the first prepare was lost): the locks as they are now.
        return { ...outcome, locks: locks ?? (await this.locksOf(this.driver.run, call)) };
      } catch (error) {
        if (atLockError(error) !== 'conflict') throw error;
        if (performance.now() >= giveUpAt) {
          const failure = new BusinessFailure(`${lockMessage(error)}, still after ${lockWaitMs} ms`, { reason: 'at_lock_conflict' });
          return { kind: 'failed', message: failure.message, details: failure.details };
        }
        await sleep(pauseAfter(attempt));
      }
    }
  }

  commit(call: PhaseCallBody): Promise<BarrierOutcome> {
    return this.schema.explain(AT_NEEDS, () => this.runBarrierPhase(call, () => Promise.resolve(null)));
  }

  rollback(call: PhaseCallBody): Promise<BarrierOutcome> {
    return this.schema.explain(AT_NEEDS, () => this.undo(call));
  }

  private undo(call: PhaseCallBody): Promise<BarrierOutcome> {
    return this.runBarrierPhase(call, async (run) => {
      const dirty = (await run(AtSql.undoBranch(call))).rows[0]?.dirty;
      if (typeof dirty === 'string') {
        const difference = JSON.parse(dirty) as { table: string; key: string; operation: string } & Record<string, Json>;
        // Nothing restored (the local transaction rolls back), the locks kept: an operator decides.
        throw new BusinessFailure(
          `AT rollback of ${call.gid}/${call.branchId} stopped: row ${difference.key} of ${difference.table} is no longer what the branch left (${difference.operation}); nothing was restored, the locks are kept`,
          { reason: 'at_dirty_row', ...difference },
        );
      }
    });
  }

  async deleteCommitted(keys: readonly BranchKey[]): Promise<{ undo: number; locks: number }> {
    if (keys.length === 0) return { undo: 0, locks: 0 };
    const row = (await this.schema.explain(AT_NEEDS, () => this.driver.run(AtSql.deleteCommitted(keys)))).rows[0];
    return { undo: Number(row?.undo ?? 0), locks: Number(row?.locks ?? 0) };
  }

  async committedLeftovers(limit: number): Promise<BranchKey[]> {
    const { rows } = await this.schema.explain(AT_NEEDS, () => this.driver.run(AtSql.committedLeftovers(limit)));
    return rows.map((row) => ({ gid: String(row.gid), branchId: String(row.branch_id) }));
  }

  readUnlocked<T>(rows: readonly AtRowRef[], read: (tx: Tx) => Promise<T>, options: { waitMs: number; forUpdate: boolean }): Promise<T> {
    return this.schema.explain(AT_NEEDS, () => this.readWaiting(rows, read, options));
  }

  private async readWaiting<T>(rows: readonly AtRowRef[], read: (tx: Tx) => Promise<T>, { waitMs, forUpdate }: { waitMs: number; forUpdate: boolean }): Promise<T> {
    const giveUpAt = performance.now() + waitMs;
    for (let attempt = 0; ; attempt++) {
      const held = await this.driver.transaction<{ value: T } | { table: string; key: string; gid: string }>(async (run, handle) => {
        await run(this.barrier.lockTimeout(Math.max(1, waitMs)));
        for (const [table, keys] of this.byTable(rows)) {
          const info = await this.tableInfo(table);
          const locked = (await run(AtSql.lockRowsForRead(info, keys, forUpdate ? 'update' : 'share'))).rows;
          for (const { row_key } of locked) {
            const holder = (await run(AtSql.lockHolder(info.name, String(row_key)))).rows[0];
            if (holder) return { table: info.name, key: String(row_key), gid: String(holder.gid) };
          }
        }
        return { value: await read(handle) };
      });
      if ('value' in held) return held.value;
      if (performance.now() >= giveUpAt) {
        throw new AtRowLockedError(`row ${held.key} of ${held.table} is locked by global transaction ${held.gid} (waited ${waitMs} ms)`, held.table, held.key, held.gid);
      }
      await sleep(pauseAfter(attempt));
    }
  }

  private async locksOf(run: SqlRun, key: BranchKey): Promise<BranchLocks> {
    const { rows } = await run(AtSql.branchLocks(key, AT_LOCKS_REPORTED));
    return { count: Number(rows[0]?.total ?? 0), rows: rows.map((row) => ({ table: String(row.table_name), key: String(row.row_key) })) };
  }

  private byTable(rows: readonly AtRowRef[]): Map<string, Record<string, unknown>[]> {
    const grouped = new Map<string, Record<string, unknown>[]>();
    for (const row of rows) grouped.set(row.table, [...(grouped.get(row.table) ?? []), row.key]);
    return grouped;
  }

  /** A table's key columns: as installed, or asked of the catalog (a table no AT action writes still has readers). */
  private async tableInfo(table: string): Promise<AtTableInfo> {
    const known = this.tables.get(table);
    if (known) return known;
    const row = (await this.driver.run(AtSql.tableInfo(table))).rows[0];
    if (!row) throw new Error(`table ${table} does not exist`);
    const info = AtSql.readTableInfo(row);
    if (info.keyColumns.length === 0) throw new Error(`table ${table} has no primary key`);
    this.tables.set(table, info);
    return info;
  }
}
