import type { SqlDialect } from '../core/sql.js';

/** The barrier's dialect for a TypeORM database type; other databases are refused. */
export function typeormDialect(type: string): SqlDialect {
  if (type === 'postgres') return 'postgres';
  if (type === 'mysql' || type === 'mariadb') return 'mysql';
  throw new Error(`the nest-dtx barrier supports TypeORM on postgres, mysql and mariadb, not ${type}`);
}
