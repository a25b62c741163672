/**
 * The barrier conformance suite on TypeORM, on Postgres and on MariaDB: the business work runs
 * on the transaction's EntityManager, and the barrier table comes from the SDK's migration.
 */
import { DataSource, type EntityManager } from 'typeorm';
import { dtxMigrations, type SqlDialect } from '@nest-dtx/sdk';
import { typeormDataLayer } from '@nest-dtx/sdk/typeorm';
import { describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck } from './schema-check.js';
import { LEDGER_INSERT, sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

const label = (dialect: SqlDialect) => (dialect === 'postgres' ? 'Postgres' : 'MariaDB');

/** An app's DataSource with the SDK's migrations among its own; initialised, not migrated. */
async function dataSourceOn(dialect: SqlDialect, url: string): Promise<DataSource> {
  const dataSource = new DataSource({
    type: dialect === 'postgres' ? 'postgres' : 'mariadb',
    url,
    migrations: [...dtxMigrations],
    extra: dialect === 'postgres' ? { max: 12 } : { connectionLimit: 12 },
  });
  return dataSource.initialize();
}

for (const dialect of ['postgres', 'mysql'] as const satisfies readonly SqlDialect[]) {
  const record = async (manager: EntityManager, gid: string, phase: string) => void (await manager.query(LEDGER_INSERT[dialect], [gid, phase]));

  describeBarrierConformance(`TypeORM (${label(dialect)})`, { rowLocks: true, retentionJob: true, at: dialect === 'postgres' }, async () => {
    // The table is made by dtxMigrations, as an app's migrations would.
    const database = await sqlTestDatabase(dialect, `conf_typeorm_${dialect}`, false);
    const dataSource = await dataSourceOn(dialect, database.db.url);
    await dataSource.runMigrations();
    return sqlFixture(database, typeormDataLayer(dataSource, { lockTimeoutMs: 1000 }), record, () => dataSource.destroy());
  });

  describeSchemaCheck(`TypeORM (${label(dialect)})`, async () => {
    const database = await sqlTestDatabase(dialect, `schema_typeorm_${dialect}`, false);
    const dataSource = await dataSourceOn(dialect, database.db.url);
    return {
      database,
      layer: typeormDataLayer(dataSource),
      fix: { barrier: "add ...dtxMigrations to the DataSource's migrations and run them" },
      migrate: async () => void (await dataSource.runMigrations()),
      record,
      tearDown: async () => {
        await dataSource.destroy();
        await database.drop();
      },
    };
  });
}
