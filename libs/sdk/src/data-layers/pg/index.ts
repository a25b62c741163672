import type { Pool, PoolClient } from 'pg';
import type { DataLayerOptions, DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import { dollarPlaceholders, type SqlRun } from '../core/sql.js';

export { barrierTableDdl } from '../core/barrier-sql.js';
export { atSchemaDdl, atTriggerDdl } from '../core/at-sql.js';

function runOn(client: PoolClient): SqlRun {
  return async (statement) => {
    const result = await client.query<Record<string, unknown>>(dollarPlaceholders(statement.text), [...statement.values]);
    return { rows: result.rows ?? [], affected: result.rowCount ?? 0 };
  };
}

/**
 * The barrier on a node-postgres (`pg`) Pool. Business methods receive the transaction's
 * PoolClient as `context.tx`: run the business statements on it, and they commit or roll back
 * with the barrier's rows. XA (XaAction) through PREPARE TRANSACTION. The table:
 * `barrierTableDdl('postgres')`, run once by your migrations.
 */
export function pgDataLayer(pool: Pool, options?: DataLayerOptions): DtxDataLayer<PoolClient> {
  const alone: SqlRun = async (statement) => {
    const client = await pool.connect();
    try {
      return await runOn(client)(statement);
    } finally {
      client.release();
    }
  };
  return sqlDataLayer<PoolClient>(
    {
      library: 'pg',
      dialect: 'postgres',
      schemaFix: {
        barrier: "run barrierTableDdl('postgres') (@nest-dtx/sdk/pg) in your migrations",
        at: 'run atSchemaDdl() (@nest-dtx/sdk/pg) in your migrations',
      },
      run: alone,
      transaction: async (work) => {
        const client = await pool.connect();
        // A connection that cannot even roll back is closed, not given back mid-transaction.
        let healthy = true;
        try {
          await client.query('BEGIN');
          try {
            const result = await work(runOn(client), client);
            await client.query('COMMIT');
            return result;
          } catch (error) {
            await client.query('ROLLBACK').catch(() => {
              healthy = false;
            });
            throw error;
          }
        } finally {
          client.release(!healthy);
        }
      },
      session: async () => {
        const client = await pool.connect();
        return { run: runOn(client), handle: client, release: ({ destroy = false } = {}) => Promise.resolve(client.release(destroy)) };
      },
    },
    options,
  );
}
