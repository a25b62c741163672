import { DrizzleQueryError, sql, type SQL } from 'drizzle-orm';
import type { DataLayerOptions, DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import { countOf, templateParts, type SqlDialect, type SqlResult, type SqlRun, type SqlStatement } from '../core/sql.js';

export { barrierTableDdl } from '../core/barrier-sql.js';
export { atSchemaDdl, atTriggerDdl } from '../core/at-sql.js';
export { dtxBarrierPg } from './barrier-pg.js';
export { dtxBarrierMysql } from './barrier-mysql.js';

/** What the barrier uses of a drizzle database or transaction: `execute` of a `sql` template. */
export interface DrizzleExecutorLike {
  execute(query: SQL): PromiseLike<unknown>;
}

/**
 * What the barrier uses of a drizzle database: `execute`, and `transaction` whose callback
 * receives `Tx`. `Tx` is inferred from your database's `transaction` callback, so business
 * methods get drizzle's own transaction type (with your schema) as `context.tx`.
 */
export interface DrizzleDatabaseLike<Tx extends DrizzleExecutorLike> extends DrizzleExecutorLike {
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
}

export interface DrizzleDataLayerOptions extends DataLayerOptions {
  /** `postgres` for `drizzle-orm/node-postgres`, `mysql` for `drizzle-orm/mysql2` (MySQL or MariaDB). */
  dialect: SqlDialect;
}

/**
 * What the drivers answer to `execute`, made even: node-postgres a QueryResult (`rows`,
 * `rowCount`), mysql2 a `[rows, fields]` or `[ResultSetHeader, fields]` pair. Any other shape
 * is refused rather than read as "no row changed", which the barrier would take for a
 * duplicate call and skip the business work.
 */
function resultOf(dialect: SqlDialect, raw: unknown, statement: SqlStatement): SqlResult {
  if (dialect === 'postgres') {
    const result = raw as { rows?: unknown; rowCount?: unknown } | null;
    if (result && Array.isArray(result.rows) && 'rowCount' in result) {
      return { rows: result.rows as Record<string, unknown>[], affected: countOf(result.rowCount) };
    }
  } else if (Array.isArray(raw) && raw.length === 2) {
    const [first] = raw as [unknown, unknown];
    if (Array.isArray(first)) return { rows: first as Record<string, unknown>[], affected: 0 };
    const header = first as { affectedRows?: unknown } | null;
    if (header && typeof header === 'object' && 'affectedRows' in header) return { rows: [], affected: countOf(header.affectedRows) };
  }
  const driver = dialect === 'postgres' ? 'drizzle-orm/node-postgres' : 'drizzle-orm/mysql2';
  throw new Error(`drizzleDataLayer: unexpected result of ${statement.text.split(/\s/, 1)[0]} (is the database ${driver}?)`);
}

function runOn(executor: DrizzleExecutorLike, dialect: SqlDialect): SqlRun {
  // Each value a bound parameter (sql.param: an array would not be spread into a list); drizzle
  // writes the dialect's placeholders.
  return async (statement) => {
    const query = sql(templateParts(statement), ...statement.values.map((value) => sql.param(value)));
    let raw: unknown;
    try {
      raw = await executor.execute(query);
    } catch (error) {
      // drizzle wraps the driver's error in one that says only "Failed query: <sql>": the
      // barrier's own statements fail with the driver's error (a lock timeout's 55P03 or
      // ER_LOCK_WAIT_TIMEOUT, its message), as with pgDataLayer and mysql2DataLayer.
      if (error instanceof DrizzleQueryError && error.cause instanceof Error) throw error.cause;
      throw error;
    }
    return resultOf(dialect, raw, statement);
  };
}

/**
 * The barrier on a drizzle database: drizzle-orm/node-postgres over a pg Pool, or
 * drizzle-orm/mysql2 over a mysql2 Pool (MySQL or MariaDB). Each phase runs in one
 * `db.transaction(async (tx) => ...)`: the barrier's statements through `tx.execute(sql...)`,
 * and the business method receives that `tx` as `context.tx`. Write the business change through
 * it (`tx.insert(...)`, `tx.update(...)`) and it commits or rolls back with the barrier's rows.
 * Give drizzle a Pool, not a single connection: each transaction takes a connection of its own.
 *
 * No XA (XaAction is refused at start-up): prepared transactions need a dedicated connection on
 * which the SDK sends the transaction's statements itself; drizzle gives none, and a drizzle
 * handle on a connection of the SDK's making would be another type than the `tx` business
 * methods get. Use pgDataLayer or mysql2DataLayer on the same pool for XA branches.
 *
 * The barrier table: `barrierTableDdl(dialect)` in a migration, or, with drizzle-kit, export
 * `dtxBarrierPg` / `dtxBarrierMysql` from your schema. On MySQL/MariaDB the barrier sets
 * innodb_lock_wait_timeout on the connection a phase uses (MySQL has no setting per transaction).
 */
export function drizzleDataLayer<Tx extends DrizzleExecutorLike>(db: DrizzleDatabaseLike<Tx>, options: DrizzleDataLayerOptions): DtxDataLayer<Tx> {
  const { dialect } = options;
  if (dialect !== 'postgres' && dialect !== 'mysql') throw new Error(`drizzleDataLayer: dialect must be 'postgres' or 'mysql' (got ${String(dialect)})`);
  return sqlDataLayer<Tx>(
    {
      library: 'Drizzle',
      dialect,
      schemaFix: {
        barrier: `export ${dialect === 'postgres' ? 'dtxBarrierPg' : 'dtxBarrierMysql'} (@nest-dtx/sdk/drizzle) from your schema and migrate with drizzle-kit, or run barrierTableDdl('${dialect}')`,
        at: 'run atSchemaDdl() (@nest-dtx/sdk/drizzle) in a migration',
      },
      run: runOn(db, dialect),
      transaction: (work) => db.transaction((tx) => work(runOn(tx, dialect), tx)),
    },
    { lockTimeoutMs: options.lockTimeoutMs },
  );
}
