import type { Pool, PoolConnection } from 'mysql2/promise';
import type { DataLayerOptions, DtxDataLayer } from '../core/data-layer.js';
import { sqlDataLayer } from '../core/sql-data-layer.js';
import type { SqlRun } from '../core/sql.js';

export { barrierTableDdl } from '../core/barrier-sql.js';

function runOn(connection: PoolConnection): SqlRun {
  return async (statement) => {
    const [result] = await connection.query(statement.text, [...statement.values]);
    if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], affected: 0 };
    const header = result as { affectedRows?: number };
    return { rows: [], affected: header.affectedRows ?? 0 };
  };
}

/**
 * The barrier on a mysql2 promise Pool (MySQL or MariaDB). Business methods receive the
 * transaction's PoolConnection as `context.tx`. The table: `barrierTableDdl('mysql')`, run once
 * by your migrations. The barrier sets innodb_lock_wait_timeout on the connections it uses
 * (MySQL has no setting per transaction).
 *
 * XA (XaAction) through XA START/END/PREPARE/COMMIT/ROLLBACK, on a connection of the pool's own:
 * MariaDB 10.5+ and MySQL 5.7.7+ keep a prepared XA transaction when the connection that
 * prepared it closes, so that connection is closed (on MariaDB it can do nothing else until the
 * transaction is finished) and the pool opens another. The pool's connections need a default
 * database (the `database` option): XA ids are server-wide, and carry a tag of the database's
 * name so that two databases on one server never see each other's. Listing them takes XA
 * RECOVER, which MySQL 8 grants only with the XA_RECOVER_ADMIN privilege.
 */
export function mysql2DataLayer(pool: Pool, options?: DataLayerOptions): DtxDataLayer<PoolConnection> {
  return sqlDataLayer<PoolConnection>(
    {
      library: 'mysql2',
      dialect: 'mysql',
      schemaFix: { barrier: "run barrierTableDdl('mysql') (@nest-dtx/sdk/mysql2) in your migrations" },
      run: async (statement) => {
        const connection = await pool.getConnection();
        try {
          return await runOn(connection)(statement);
        } finally {
          connection.release();
        }
      },
      transaction: async (work) => {
        const connection = await pool.getConnection();
        let healthy = true;
        try {
          await connection.beginTransaction();
          try {
            const result = await work(runOn(connection), connection);
            await connection.commit();
            return result;
          } catch (error) {
            await connection.rollback().catch(() => {
              healthy = false;
            });
            throw error;
          }
        } finally {
          if (healthy) connection.release();
          else connection.destroy();
        }
      },
      session: async () => {
        const connection = await pool.getConnection();
        return {
          run: runOn(connection),
          handle: connection,
          release: ({ destroy = false } = {}) => Promise.resolve(destroy ? connection.destroy() : connection.release()),
        };
      },
    },
    options,
  );
}
