import type { EntityManager } from 'typeorm';

/**
 * Runs SQL and returns its rows. TypeORM's Postgres `query()` answers an UPDATE or DELETE with
 * `[rows, affectedCount]` instead of the rows; this evens that out so `RETURNING` reads the same
 * for every statement.
 */
export async function queryRows<T = Record<string, unknown>>(manager: Pick<EntityManager, 'query'>, sql: string, params: unknown[] = []): Promise<T[]> {
  const result: unknown = await manager.query(sql, params);
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}
