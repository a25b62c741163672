/** The barrier conformance suite on node-postgres: the business work runs on the transaction's PoolClient. */
import pg from 'pg';
import { pgDataLayer } from '@nest-dtx/sdk/pg';
import { describeBarrierConformance } from './conformance.js';
import { LEDGER_INSERT, sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

describeBarrierConformance('pg (Postgres)', { rowLocks: true, retentionJob: true, at: true }, async () => {
  const database = await sqlTestDatabase('postgres', 'conf_pg');
  const pool = new pg.Pool({ connectionString: database.db.url, max: 12 });
  const record = async (client: pg.PoolClient, gid: string, phase: string) => void (await client.query(LEDGER_INSERT.postgres, [gid, phase]));
  return sqlFixture(database, pgDataLayer(pool, { lockTimeoutMs: 1000 }), record, () => pool.end());
});
