import type { DataLayerOptions, DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import { countOf, type SqlDialect, type SqlRun } from '../core/sql.js';

export { barrierTableDdl, dropBarrierTableDdl } from '../core/barrier-sql.js';
export { atSchemaDdl, atTriggerDdl, dropAtSchemaDdl } from '../core/at-sql.js';

/**
 * What the barrier uses of a MikroORM EntityManager on a SQL driver (`EntityManager` of
 * @mikro-orm/postgresql or @mikro-orm/mysql, a SqlEntityManager), written structurally so that
 * the SDK needs no MikroORM package at run time.
 */
export interface MikroOrmSqlEntityManager {
  fork(options?: { clear?: boolean; disableTransactions?: boolean }): this;
  transactional<T>(work: (em: this) => Promise<T>): Promise<T>;
  /** Raw SQL with `?` placeholders, in the EntityManager's transaction if it has one. */
  execute(query: string, params?: unknown[], method?: 'all' | 'get' | 'run'): Promise<unknown>;
  flush(): Promise<void>;
  getPlatform(): object;
}

/** The names of an object's classes, itself first: `MariaDbPlatform`, `MySqlPlatform`, `AbstractSqlPlatform`, `Platform`. */
function classNames(value: object): string[] {
  const names: string[] = [];
  for (let proto: unknown = Object.getPrototypeOf(value); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    names.push((proto as { constructor: { name: string } }).constructor.name);
  }
  return names;
}

/** The barrier's dialect, from the EntityManager's platform; any other driver is refused now rather than at the first phase. */
export function mikroOrmDialect(em: MikroOrmSqlEntityManager): SqlDialect {
  const platform = em.getPlatform();
  const names = classNames(platform);
  // MariaDbPlatform (@mikro-orm/mariadb) is a MySqlPlatform.
  if (names.includes('PostgreSqlPlatform')) return 'postgres';
  if (names.includes('MySqlPlatform')) return 'mysql';
  if (names.some((name) => /sqlite|libsql/i.test(name))) {
    throw new Error('mikroOrmDataLayer: SQLite is not supported (the barrier needs row locks that wait, and a lock timeout); use Postgres, MySQL or MariaDB');
  }
  if (typeof em.execute !== 'function' || !names.includes('AbstractSqlPlatform')) {
    throw new Error(`mikroOrmDataLayer needs a SQL driver (@mikro-orm/postgresql, @mikro-orm/mysql or @mikro-orm/mariadb); ${names[0] ?? 'this platform'} is not one`);
  }
  throw new Error(`mikroOrmDataLayer supports Postgres, MySQL and MariaDB, not ${names[0]}`);
}

/**
 * The barrier's statements through the EntityManager's `execute`, which runs them in its
 * transaction when it is in one. Reads ask for the rows (`all`); the others for the driver's
 * result header (`run`: `affectedRows`, from the row count on Postgres and the OK packet on
 * MySQL/MariaDB, where an INSERT IGNORE that was ignored counts 0).
 */
function runOn(em: MikroOrmSqlEntityManager): SqlRun {
  return async (statement) => {
    if (statement.reads === 'rows') {
      const rows = await em.execute(statement.text, [...statement.values], 'all');
      return { rows: Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [], affected: 0 };
    }
    const header = (await em.execute(statement.text, [...statement.values], 'run')) as { affectedRows?: unknown } | undefined;
    return { rows: [], affected: countOf(header?.affectedRows) };
  };
}

/**
 * The barrier on MikroORM (6.x, SQL drivers: Postgres, MySQL, MariaDB; SQLite and MongoDB are
 * refused). Give it the MikroORM instance or an EntityManager. Each phase runs in a fork of its
 * own (a fresh identity map), in `transactional`: the business method receives that fork, the
 * transaction's EntityManager, as `context.tx`. What it persists is flushed when the business
 * method has returned and the barrier has stored its result, and before the commit: the barrier's
 * rows and the business changes commit or roll back together. Call `em.flush()` yourself when the
 * business needs the rows written earlier (generated ids in its result, say). Inside the business
 * method the global EntityManager (the one a service has injected) resolves to that same fork,
 * through MikroORM's transaction context. Transactions are used even if the ORM's
 * `disableTransactions` is set: the barrier needs them.
 *
 * No XA: MikroORM gives a connection only inside its own transaction (BEGIN), which MySQL's
 * XA START cannot follow, and flushes on its own schedule, which prepared transactions need
 * before PREPARE. Use pgDataLayer or mysql2DataLayer for XaAction.
 *
 * The table, from a MikroORM migration (@mikro-orm/migrations):
 *
 * ```ts
 * import { Migration } from '@mikro-orm/migrations';
 * import { barrierTableDdl, dropBarrierTableDdl } from '@nest-dtx/sdk/mikro-orm';
 *
 * export class Migration20250101000000_DtxBarrier extends Migration {
 *   override async up(): Promise<void> {
 *     for (const ddl of barrierTableDdl('postgres')) this.addSql(ddl); // or 'mysql'
 *   }
 *   override async down(): Promise<void> {
 *     for (const ddl of dropBarrierTableDdl()) this.addSql(ddl);
 *   }
 * }
 * ```
 *
 * The schema generator does not know the table: exclude `dtx_barrier` from it (its
 * `skipTables` option) if you diff the schema.
 */
export function mikroOrmDataLayer<Em extends MikroOrmSqlEntityManager>(orm: { em: Em }, options?: DataLayerOptions): DtxDataLayer<Em>;
export function mikroOrmDataLayer<Em extends MikroOrmSqlEntityManager>(em: Em, options?: DataLayerOptions): DtxDataLayer<Em>;
export function mikroOrmDataLayer<Em extends MikroOrmSqlEntityManager>(source: Em | { em: Em }, options?: DataLayerOptions): DtxDataLayer<Em> {
  const em: Em = 'fork' in source && typeof source.fork === 'function' ? source : (source as { em: Em }).em;
  const dialect = mikroOrmDialect(em);
  // A fork of its own for every call: an identity map per phase, not the shared one, and no
  // transaction of a surrounding context joined by accident.
  const fork = () => em.fork({ clear: true, disableTransactions: false });
  return sqlDataLayer<Em>(
    {
      library: 'MikroORM',
      dialect,
      schemaFix: {
        barrier: `add a migration that runs barrierTableDdl('${dialect}') (@nest-dtx/sdk/mikro-orm) and run it`,
        at: 'run atSchemaDdl() in one too',
      },
      run: (statement) => runOn(fork())(statement),
      // transactional flushes after the work (and the barrier's last statement) and before the commit.
      transaction: (work) => fork().transactional((tx) => work(runOn(tx), tx)),
      // AT mode reads the rows the work locked: what it persisted must be written first.
      flush: (tx) => tx.flush(),
    },
    options,
  );
}
