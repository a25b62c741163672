/**
 * The barrier conformance suite on TypeORM, on Postgres and on MariaDB: the business work runs
 * on the transaction's EntityManager, and the barrier table comes from the SDK's migration.
 */
import { DataSource, type EntityManager } from 'typeorm';
import { dtxMigrations, type SqlDialect } from '@nest-dtx/sdk';
import { typeormDataLayer } from '@nest-dtx/sdk/typeorm';
import { describeBarrierConformance } from './conformance.js';
import { LEDGER_INSERT, sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

for (const dialect of ['postgres', 'mysql'] as const satisfies readonly SqlDialect[]) {
  describeBarrierConformance(`TypeORM (${dialect === 'postgres' ? 'Postgres' : 'MariaDB'})`, { rowLocks: true, retentionJob: true, at: dialect === 'postgres' }, async () => {
    // The table is made by dtxMigrations, as an app's migrations would.
    const database = await sqlTestDatabase(dialect, `conf_typeorm_${dialect}`, false);
    const dataSource = new DataSource({
      type: dialect === 'postgres' ? 'postgres' : 'mariadb',
      url: database.db.url,
      migrations: [...dtxMigrations],
      extra: dialect === 'postgres' ? { max: 12 } : { connectionLimit: 12 },
    });
    await dataSource.initialize();
    await dataSource.runMigrations();
    const record = async (manager: EntityManager, gid: string, phase: string) => void (await manager.query(LEDGER_INSERT[dialect], [gid, phase]));
    return sqlFixture(database, typeormDataLayer(dataSource, { lockTimeoutMs: 1000 }), record, () => dataSource.destroy());
  });
}
