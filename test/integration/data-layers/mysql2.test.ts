/** The barrier conformance suite on mysql2 against MariaDB: the business work runs on the transaction's PoolConnection. */
import mysql from 'mysql2/promise';
import { mysql2DataLayer } from '@nest-dtx/sdk/mysql2';
import { describeBarrierConformance } from './conformance.js';
import { LEDGER_INSERT, sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

describeBarrierConformance('mysql2 (MariaDB)', { rowLocks: true, retentionJob: true }, async () => {
  const database = await sqlTestDatabase('mysql', 'conf_mysql2');
  const pool = mysql.createPool({ uri: database.db.url, connectionLimit: 12 });
  const record = async (connection: mysql.PoolConnection, gid: string, phase: string) => void (await connection.query(LEDGER_INSERT.mysql, [gid, phase]));
  return sqlFixture(database, mysql2DataLayer(pool, { lockTimeoutMs: 1000 }), record, () => pool.end());
});
