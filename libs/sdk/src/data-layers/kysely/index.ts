import { CompiledQuery, type Kysely, type Migration, type Transaction } from 'kysely';
import { atSchemaDdl, dropAtSchemaDdl } from '../core/at-sql.js';
import { barrierTableDdl, dropBarrierTableDdl } from '../core/barrier-sql.js';
import type { DataLayerOptions, DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import { countOf, dollarPlaceholders, type SqlDialect, type SqlRun, type SqlSession } from '../core/sql.js';

export { barrierTableDdl } from '../core/barrier-sql.js';
export { atSchemaDdl, atTriggerDdl } from '../core/at-sql.js';

export interface KyselyDataLayerOptions extends DataLayerOptions {
  /**
   * The SQL of the Kysely instance's dialect: `postgres` (PostgresDialect) or `mysql`
   * (MysqlDialect, MySQL or MariaDB). Kysely does not tell it, so it is given here.
   */
  dialect: SqlDialect;
}

/**
 * Runs the barrier's statements on a Kysely instance or transaction, as raw compiled queries.
 * Without the instance's plugins: a result transformer (CamelCasePlugin, say) would rename the
 * columns the barrier reads (`branch_id`, `gtrid_length`).
 */
function runOn<DB>(db: Kysely<DB>, dialect: SqlDialect): SqlRun {
  const bare = db.withoutPlugins();
  return async (statement) => {
    const text = dialect === 'postgres' ? dollarPlaceholders(statement.text) : statement.text;
    const result = await bare.executeQuery(CompiledQuery.raw(text, [...statement.values]));
    return { rows: result.rows as Record<string, unknown>[], affected: countOf(result.numAffectedRows) };
  };
}

/**
 * The barrier on a Kysely instance (0.28; PostgresDialect over pg, or MysqlDialect over mysql2
 * for MySQL and MariaDB). Business methods receive the local transaction, a `Transaction<DB>` of
 * your own database type, as `context.tx`: build the business queries on it and they commit or
 * roll back with the barrier's rows. The table: `dtxBarrierMigration(dialect)` in your
 * Migrator's migrations (or `barrierTableDdl(dialect)` run by your own).
 *
 * XA (XaAction) on Postgres only, through PREPARE TRANSACTION on a controlled transaction
 * (Kysely 0.28). Not on MySQL/MariaDB: a connection that prepared an XA transaction must be
 * closed (on MariaDB, while it stays open the transaction remains bound to it, and another
 * connection's XA COMMIT answers XAER_NOTA), and Kysely's MysqlDriver can only give a connection
 * back to its pool, never close it. For XA on MySQL or MariaDB use mysql2DataLayer.
 */
export function kyselyDataLayer<DB>(db: Kysely<DB>, options: KyselyDataLayerOptions): DtxDataLayer<Transaction<DB>> {
  const { dialect } = options;
  if (dialect !== 'postgres' && dialect !== 'mysql') throw new Error(`kyselyDataLayer: dialect must be 'postgres' or 'mysql' (got ${String(dialect)})`);
  /**
   * A controlled transaction (Kysely 0.28) holds one connection from BEGIN until it is told to
   * end, across any awaits: the prepared transaction's session. Kysely sends its BEGIN (so the
   * session says `begun`), and the transaction is ended by the XA statements' PREPARE
   * TRANSACTION (or ROLLBACK). The closing ROLLBACK just gives the connection back: it rolls back
   * nothing ("no transaction in progress" warning). The business method gets a real Transaction<DB>: its transaction()
   * and connection() refuse, so it cannot end the prepared transaction's work early.
   */
  const session = async (): Promise<SqlSession<Transaction<DB>>> => {
    const trx = await db.startTransaction().execute();
    return {
      run: runOn(trx, dialect),
      handle: trx,
      begun: true,
      release: async () => {
        // A ROLLBACK fails on a dead connection; Kysely gives it back anyway (it cannot close
        // one), and node-postgres's pool drops a client that is no longer queryable.
        await trx
          .rollback()
          .execute()
          .catch(() => undefined);
      },
    };
  };
  return sqlDataLayer<Transaction<DB>>(
    {
      library: 'Kysely',
      dialect,
      schemaFix: {
        barrier: `add dtxBarrierMigration('${dialect}') (@nest-dtx/sdk/kysely) to your Migrator's migrations and migrate`,
        at: 'add dtxAtMigration() after it',
      },
      run: runOn(db, dialect),
      transaction: (work) => db.transaction().execute((trx) => work(runOn(trx, dialect), trx)),
      // startTransaction is Kysely 0.28's: with 0.27 there is no XA.
      ...(dialect === 'postgres' && typeof db.startTransaction === 'function' ? { session } : {}),
    },
    options,
  );
}

/**
 * The barrier table as a migration for Kysely's Migrator, in your provider's migrations under a
 * name of your choice that sorts where you want it, e.g.
 * `{ '0000_dtx_barrier': dtxBarrierMigration('postgres'), ...yourOwn }`.
 */
export function dtxBarrierMigration(dialect: SqlDialect): Migration {
  return {
    up: (db) => runAll(db, barrierTableDdl(dialect)),
    down: (db) => runAll(db, dropBarrierTableDdl()),
  };
}

/**
 * AT mode's tables and functions (Postgres) as a migration for Kysely's Migrator, after the
 * barrier's: `{ '0000_dtx_barrier': dtxBarrierMigration('postgres'), '0001_dtx_at': dtxAtMigration(), ...yourOwn }`.
 */
export function dtxAtMigration(): Migration {
  return {
    up: (db) => runAll(db, atSchemaDdl()),
    down: (db) => runAll(db, dropAtSchemaDdl()),
  };
}

async function runAll(db: Kysely<unknown>, statements: string[]): Promise<void> {
  for (const text of statements) await db.executeQuery(CompiledQuery.raw(text));
}
