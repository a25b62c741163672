import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { DataLayerOptions, DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import { dollarPlaceholders, type SqlDialect, type SqlRun, type SqlSession } from '../core/sql.js';
import { typeormDialect } from './dialect.js';

export { dtxMigrations, CreateDtxAt1763800000200, CreateDtxBarrier1763800000100 } from './barrier.migration.js';

const TYPEORM_FIX = "add ...dtxMigrations to the DataSource's migrations and run them";

function runOn(runner: QueryRunner, dialect: SqlDialect): SqlRun {
  return async (statement) => {
    const text = dialect === 'postgres' ? dollarPlaceholders(statement.text) : statement.text;
    // The structured result evens out what drivers answer (rows, or [rows, count], or a header).
    const result = await runner.query(text, [...statement.values], true);
    const records: unknown = result.records;
    return { rows: Array.isArray(records) ? (records as Record<string, unknown>[]) : [], affected: result.affected ?? 0 };
  };
}

/**
 * The barrier on a TypeORM DataSource (Postgres, MySQL or MariaDB). Business methods receive the
 * local transaction's EntityManager as `context.tx` (and, as before, `context.manager`). XA
 * (XaAction) on Postgres; on MySQL/MariaDB use mysql2DataLayer for XA. Without a `dataLayer`
 * option, DtxParticipantModule uses this on the DataSource its `dataSource` option names.
 */
export function typeormDataLayer(dataSource: DataSource, options?: DataLayerOptions): DtxDataLayer<EntityManager> {
  const dialect = typeormDialect(String(dataSource.options.type));
  const alone: SqlRun = async (statement) => {
    const runner = dataSource.createQueryRunner();
    try {
      return await runOn(runner, dialect)(statement);
    } finally {
      await runner.release();
    }
  };
  const session = async (): Promise<SqlSession<EntityManager>> => {
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    return { run: runOn(runner, dialect), handle: runner.manager, release: () => runner.release() };
  };
  return sqlDataLayer<EntityManager>(
    {
      library: 'TypeORM',
      dialect,
      // dtxMigrations makes both (its AT migration does nothing on MySQL/MariaDB).
      schemaFix: { barrier: TYPEORM_FIX, at: TYPEORM_FIX },
      run: alone,
      transaction: (work) => dataSource.transaction((manager) => work(runOn(manager.queryRunner!, dialect), manager)),
      ...(dialect === 'postgres' ? { session } : {}),
    },
    options,
  );
}
export { queryRows } from './query-rows.js';
