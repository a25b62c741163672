import { DEFAULT_LOCK_TIMEOUT_MS, type DataLayerOptions, type DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import { countOf, dollarPlaceholders, type SqlDialect, type SqlRun } from '../core/sql.js';

export { barrierTableDdl } from '../core/barrier-sql.js';
export { atSchemaDdl, atTriggerDdl } from '../core/at-sql.js';

/**
 * What the barrier uses of an interactive transaction's client (your generated
 * `Prisma.TransactionClient`, which has these two methods): its raw statements.
 */
export interface PrismaTransactionClientLike {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
  $queryRawUnsafe(query: string, ...values: unknown[]): PromiseLike<unknown>;
}

/** Prisma's isolation levels on Postgres and MySQL/MariaDB. */
export type PrismaIsolationLevel = 'ReadUncommitted' | 'ReadCommitted' | 'RepeatableRead' | 'Serializable';

/** The options of Prisma's interactive `$transaction`, as the barrier passes them. */
export interface PrismaTransactionOptions {
  /** How long a phase waits for a pooled connection and its BEGIN. */
  maxWait?: number;
  /** How long the whole local transaction may stay open before Prisma rolls it back. */
  timeout?: number;
  /** Unset: the database's default (Postgres READ COMMITTED, MySQL/MariaDB REPEATABLE READ), as with the other adapters. */
  isolationLevel?: PrismaIsolationLevel;
}

/**
 * What the barrier uses of a PrismaClient: the raw statements, and interactive transactions
 * whose callback receives `Tx`. Your generated PrismaClient has this shape; `Tx` is inferred
 * from its `$transaction` callback's parameter, so business methods get your own generated
 * transaction client type (with your models) as `context.tx`.
 */
export interface PrismaClientLike<Tx extends PrismaTransactionClientLike> extends PrismaTransactionClientLike {
  $transaction<R>(work: (tx: Tx) => Promise<R>, options?: PrismaTransactionOptions): PromiseLike<R>;
}

export interface PrismaDataLayerOptions extends DataLayerOptions {
  /** The database the client's driver adapter talks to: `postgres` (@prisma/adapter-pg) or `mysql` (@prisma/adapter-mariadb, MySQL or MariaDB). */
  dialect: SqlDialect;
  /**
   * The options of each phase's interactive transaction (they take the place of the client's
   * own `transactionOptions`). Defaults:
   * - `maxWait`: the larger of 5 s and `lockTimeoutMs`. Prisma's 2 s counts the wait for a pooled
   *   connection, and under a burst of calls (the coordinator retrying, concurrent calls for
   *   one branch queueing behind one row's lock, each holding its connection for up to the lock
   *   timeout) that would refuse calls that would have gone through a moment later. Waiting
   *   longer than the coordinator waits for its answer (5 s by default) is pointless.
   * - `timeout`: the larger of 30 s and three lock timeouts. Prisma's 5 s equals the default
   *   lock timeout: a phase waiting for a row would be rolled back by Prisma's timer, with a
   *   "transaction already closed" error, instead of by the lock timeout. A rollback phase can
   *   wait for two barrier rows, and the business work for its own rows.
   * A `timeout` not above `lockTimeoutMs` is refused.
   */
  transactionOptions?: PrismaTransactionOptions;
}

function runOn(client: PrismaTransactionClientLike, dialect: SqlDialect): SqlRun {
  return async (statement) => {
    const text = dialect === 'postgres' ? dollarPlaceholders(statement.text) : statement.text;
    if (statement.reads === 'rows') {
      const rows = await client.$queryRawUnsafe(text, ...statement.values);
      return { rows: Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [], affected: 0 };
    }
    return { rows: [], affected: countOf(await client.$executeRawUnsafe(text, ...statement.values)) };
  };
}

function transactionOptionsOf(options: PrismaDataLayerOptions): PrismaTransactionOptions {
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const chosen: PrismaTransactionOptions = {
    maxWait: Math.max(5_000, lockTimeoutMs),
    timeout: Math.max(30_000, 3 * lockTimeoutMs),
    ...options.transactionOptions,
  };
  if (!(Number(chosen.timeout) > lockTimeoutMs)) {
    throw new Error(
      `prismaDataLayer: transactionOptions.timeout (${chosen.timeout} ms) must be above lockTimeoutMs (${lockTimeoutMs} ms), or Prisma ends a phase that waits for a row before its lock timeout does`,
    );
  }
  return chosen;
}

/**
 * The barrier on a Prisma 7 client with a driver adapter (@prisma/adapter-pg for Postgres,
 * @prisma/adapter-mariadb for MySQL or MariaDB). Each phase runs in one interactive
 * `prisma.$transaction(async (tx) => ...)`: the barrier's statements through
 * `tx.$executeRawUnsafe` / `tx.$queryRawUnsafe`, and the business method receives that `tx` as
 * `context.tx`. Write the business change through it (`tx.account.update(...)`) and it commits
 * or rolls back with the barrier's rows; a change through the outer `prisma` would not.
 *
 * No XA (XaAction is refused at start-up): prepared transactions need a dedicated connection
 * on which the SDK sends BEGIN/PREPARE itself, and Prisma gives none. Use pgDataLayer or
 * mysql2DataLayer on the same database for XA branches.
 *
 * The barrier table: Prisma migrations are SQL files, so make one of the SDK's DDL and apply it
 * with `prisma migrate deploy` like your other migrations:
 *
 *     mkdir -p prisma/migrations/20250101000000_dtx_barrier
 *     node --input-type=module -e "import { barrierTableDdl } from '@nest-dtx/sdk/prisma';
 *       console.log(barrierTableDdl('postgres').join(';\n\n') + ';')" \
 *       > prisma/migrations/20250101000000_dtx_barrier/migration.sql
 *
 * (`'mysql'` for MySQL/MariaDB). The SDK reads and writes the table with raw SQL only, so it
 * needs no model; but `prisma migrate dev` compares your migrations with schema.prisma and
 * would plan to drop a table the schema lacks: with migrate dev, also declare it in
 * schema.prisma (`prisma db pull` writes the model). Prisma cannot express the DDL's CHECK
 * constraints nor, on MySQL, its ascii_bin columns: keep the SQL file as the table's source.
 *
 * On MySQL/MariaDB the barrier sets innodb_lock_wait_timeout on the connection a phase uses
 * (MySQL has no setting per transaction).
 */
export function prismaDataLayer<Tx extends PrismaTransactionClientLike>(prisma: PrismaClientLike<Tx>, options: PrismaDataLayerOptions): DtxDataLayer<Tx> {
  const { dialect } = options;
  if (dialect !== 'postgres' && dialect !== 'mysql') throw new Error(`prismaDataLayer: dialect must be 'postgres' or 'mysql' (got ${String(dialect)})`);
  const transactionOptions = transactionOptionsOf(options);
  return sqlDataLayer<Tx>(
    {
      library: 'Prisma',
      dialect,
      schemaFix: {
        barrier: `add a migration.sql of barrierTableDdl('${dialect}') (@nest-dtx/sdk/prisma) and run prisma migrate deploy`,
        at: 'add one of atSchemaDdl() the same way',
      },
      run: runOn(prisma, dialect),
      transaction: async (work) => prisma.$transaction((tx) => work(runOn(tx, dialect), tx), transactionOptions),
    },
    { lockTimeoutMs: options.lockTimeoutMs },
  );
}
