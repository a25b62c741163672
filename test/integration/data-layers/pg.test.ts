/** The barrier conformance suite on node-postgres: the business work runs on the transaction's PoolClient. */
import pg from 'pg';
import { pgDataLayer } from '@nest-dtx/sdk/pg';
import { describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck, migrateWithDdl } from './schema-check.js';
import { LEDGER_INSERT, sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

const record = async (client: pg.PoolClient, gid: string, phase: string) => void (await client.query(LEDGER_INSERT.postgres, [gid, phase]));

describeBarrierConformance('pg (Postgres)', { rowLocks: true, retentionJob: true, at: true }, async () => {
  const database = await sqlTestDatabase('postgres', 'conf_pg');
  const pool = new pg.Pool({ connectionString: database.db.url, max: 12 });
  return sqlFixture(database, pgDataLayer(pool, { lockTimeoutMs: 1000 }), record, () => pool.end());
});

describeSchemaCheck('pg (Postgres)', async () => {
  const database = await sqlTestDatabase('postgres', 'schema_pg', false);
  const pool = new pg.Pool({ connectionString: database.db.url, max: 4 });
  return {
    database,
    layer: pgDataLayer(pool),
    fix: { barrier: "run barrierTableDdl('postgres') (@nest-dtx/sdk/pg) in your migrations", at: 'run atSchemaDdl() (@nest-dtx/sdk/pg) in your migrations' },
    migrate: () => migrateWithDdl(database),
    record,
    tearDown: async () => {
      await pool.end();
      await database.drop();
    },
  };
});
