/** The barrier conformance suite on mysql2 against MariaDB: the business work runs on the transaction's PoolConnection. */
import mysql from 'mysql2/promise';
import { mysql2DataLayer } from '@nest-dtx/sdk/mysql2';
import { describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck, migrateWithDdl } from './schema-check.js';
import { LEDGER_INSERT, sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

const record = async (connection: mysql.PoolConnection, gid: string, phase: string) => void (await connection.query(LEDGER_INSERT.mysql, [gid, phase]));

describeBarrierConformance('mysql2 (MariaDB)', { rowLocks: true, retentionJob: true }, async () => {
  const database = await sqlTestDatabase('mysql', 'conf_mysql2');
  const pool = mysql.createPool({ uri: database.db.url, connectionLimit: 12 });
  return sqlFixture(database, mysql2DataLayer(pool, { lockTimeoutMs: 1000 }), record, () => pool.end());
});

describeSchemaCheck('mysql2 (MariaDB)', async () => {
  const database = await sqlTestDatabase('mysql', 'schema_mysql2', false);
  const pool = mysql.createPool({ uri: database.db.url, connectionLimit: 4 });
  return {
    database,
    layer: mysql2DataLayer(pool),
    fix: { barrier: "run barrierTableDdl('mysql') (@nest-dtx/sdk/mysql2) in your migrations" },
    migrate: () => migrateWithDdl(database),
    record,
    tearDown: async () => {
      await pool.end();
      await database.drop();
    },
  };
});
