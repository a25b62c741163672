import type { SchemaFix } from './schema.js';

/**
 * What a SQL library adapter gives the barrier: statements run inside the library's own local
 * transaction, and the handle the business method writes through. Statements are written once,
 * with `?` placeholders; each adapter renders them the way its driver takes them.
 */

/** The SQL the barrier speaks: Postgres, or MySQL/MariaDB. */
export type SqlDialect = 'postgres' | 'mysql';

/** One statement, its placeholders written `?` (the barrier's SQL has no other `?`). */
export interface SqlStatement {
  text: string;
  values: readonly unknown[];
  /** What the caller reads: the rows, or only how many rows it changed. */
  reads: 'rows' | 'count';
}

export interface SqlResult {
  rows: Record<string, unknown>[];
  /** Rows inserted, updated or deleted. */
  affected: number;
}

export type SqlRun = (statement: SqlStatement) => Promise<SqlResult>;

/** A connection of its own, for prepared (XA) transactions: the statements run on it in order. */
export interface SqlSession<Tx> {
  run: SqlRun;
  /** What the business method receives while the session's transaction is open. */
  handle: Tx;
  /**
   * Postgres only: the library has already begun the session's transaction (a Kysely controlled
   * transaction), so the prepared transaction's statements do not BEGIN again.
   */
  begun?: boolean;
  /** Gives the connection back; `destroy` closes it instead (MySQL: a connection that prepared an XA transaction). */
  release(options?: { destroy?: boolean }): Promise<void>;
}

export interface SqlDriver<Tx> {
  /** The library, for messages: `pg`, `TypeORM`... */
  readonly library: string;
  readonly dialect: SqlDialect;
  /** How an app using this library makes the SDK's tables: named when they are missing. */
  readonly schemaFix: SchemaFix;
  /** Runs work in one local transaction of the library: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (run: SqlRun, handle: Tx) => Promise<T>): Promise<T>;
  /** Runs one statement on its own (autocommit). */
  run: SqlRun;
  /**
   * Writes what the business work left pending in the library (a unit of work, like MikroORM's),
   * inside the transaction; absent where every statement is sent at once.
   */
  flush?(handle: Tx): Promise<void>;
  /** A dedicated connection; only adapters that can give one support XA. */
  session?(): Promise<SqlSession<Tx>>;
}

/** `?` placeholders as `$1, $2...` (node-postgres, and Prisma on Postgres). */
export function dollarPlaceholders(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/** The statement as a tagged template's parts (Drizzle's and Kysely's `sql` tags). */
export function templateParts(statement: SqlStatement): TemplateStringsArray {
  const strings = statement.text.split('?');
  if (strings.length !== statement.values.length + 1) {
    throw new Error(`statement has ${strings.length - 1} placeholders for ${statement.values.length} values`);
  }
  return Object.assign([...strings], { raw: [...strings] });
}

/** A driver's affected-row count, which some report as a bigint or not at all. */
export function countOf(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  return 0;
}
