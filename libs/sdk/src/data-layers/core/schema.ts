import { isUndefinedObjectError } from './driver-errors.js';
import type { SqlDialect, SqlDriver, SqlStatement } from './sql.js';

/**
 * The SDK's own schema in the participant's database (the barrier table; on Postgres, AT mode's
 * tables and functions), checked at start-up and named when a call finds it missing. The check
 * asks the catalog the way the SDK's statements resolve names (Postgres: through the search
 * path; MySQL/MariaDB: in the connection's default database), so what it finds is what the
 * statements would.
 */

/** What a participant needs of the schema: the barrier always (XA keeps its bookkeeping there too); AT's objects when it has AtAction methods. */
export interface SchemaNeeds {
  at: boolean;
}

/** How an app makes the SDK's tables with its library: the end of the line a missing schema is reported with. */
export interface SchemaFix {
  barrier: string;
  /** AT mode's objects (Postgres only). */
  at?: string;
}

/** The columns the SDK reads or writes, by table. */
export const BARRIER_TABLE: Readonly<Record<string, readonly string[]>> = {
  dtx_barrier: ['gid', 'branch_id', 'phase', 'origin', 'result', 'created_at'],
};
export const AT_TABLES: Readonly<Record<string, readonly string[]>> = {
  dtx_at_undo: ['seq', 'gid', 'branch_id', 'table_name', 'key_columns', 'before_image', 'after_image'],
  dtx_at_lock: ['table_name', 'row_key', 'gid', 'branch_id', 'locked_at'],
};
/** AT mode's functions, by the signature to_regprocedure takes. */
export const AT_FUNCTIONS: readonly string[] = [
  'dtx_at_row_key(jsonb,text[])',
  'dtx_at_lock_holder(text,text)',
  'dtx_at_capture()',
  'dtx_at_refuse_truncate()',
  'dtx_at_undo_branch(text,text)',
];

/** What the catalog holds of the SDK's schema. */
export interface SchemaFound {
  /** The database the connections use; null when a MySQL connection has no default database. */
  database: string | null;
  /** The columns of each of the SDK's tables that exist (a table that does not is absent). */
  columns: ReadonlyMap<string, ReadonlySet<string>>;
  /** The AT functions that exist, by signature. */
  functions: ReadonlySet<string>;
}

/** A call, or a check, found the SDK's schema missing; the message names what and the fix. */
export class DtxSchemaError extends Error {
  override readonly name = 'DtxSchemaError';
}

function listed(one: string, many: string, names: string[]): string {
  return `${names.length === 1 ? one : many} ${names.join(', ')}`;
}

/** What of `wanted` is missing from `found`, as `table x`, `column x.y` and `function f()` parts. */
function missingParts(found: SchemaFound, tables: Readonly<Record<string, readonly string[]>>, functions: readonly string[]): string[] {
  const absentTables: string[] = [];
  const absentColumns: string[] = [];
  for (const [table, columns] of Object.entries(tables)) {
    const present = found.columns.get(table);
    if (!present) absentTables.push(table);
    else absentColumns.push(...columns.filter((column) => !present.has(column)).map((column) => `${table}.${column}`));
  }
  // Shown by name: the arguments add nothing for the reader, and the line must stay short.
  const absentFunctions = functions.filter((signature) => !found.functions.has(signature)).map((signature) => signature.slice(0, signature.indexOf('(')));
  return [
    ...(absentTables.length > 0 ? [listed('table', 'tables', absentTables)] : []),
    ...(absentColumns.length > 0 ? [listed('column', 'columns', absentColumns)] : []),
    ...(absentFunctions.length > 0 ? [listed('function', 'functions', absentFunctions)] : []),
  ];
}

/**
 * The one line that says what of the schema is missing, where, and how this library makes it;
 * null when nothing is. Kept short: the coordinator stores at most 500 characters of an answer
 * as the branch's lastError.
 */
export function schemaGap(found: SchemaFound, dialect: SqlDialect, needs: SchemaNeeds, fix: SchemaFix): string | null {
  if (found.database === null) return `the connections have no default database, where the SDK's tables live: give the pool one (its \`database\` option)`;
  const at = needs.at && dialect === 'postgres';
  const parts = missingParts(found, { ...BARRIER_TABLE, ...(at ? AT_TABLES : {}) }, at ? AT_FUNCTIONS : []);
  if (parts.length === 0) return null;
  const fixes = new Set<string>();
  if (missingParts(found, BARRIER_TABLE, []).length > 0) fixes.add(fix.barrier);
  if (at && missingParts(found, AT_TABLES, AT_FUNCTIONS).length > 0) fixes.add(fix.at ?? fix.barrier);
  const plural = parts.length > 1 || /^(tables|columns|functions) /.test(parts[0]);
  return `${parts.join(' and ')} ${plural ? 'are' : 'is'} missing in database ${found.database}: ${[...fixes].join('; ')}`;
}

const rows = (text: string): SqlStatement => ({ text, values: [], reads: 'rows' });

/** The catalog's statements. Names are the SDK's own constants; no `?` (every `?` is a placeholder). */
const CATALOG = {
  database: (dialect: SqlDialect) => rows(dialect === 'postgres' ? 'SELECT current_database()::text AS name' : 'SELECT DATABASE() AS name'),
  columns(dialect: SqlDialect, tables: string[]): SqlStatement {
    const quoted = tables.map((table) => `'${table}'`);
    return dialect === 'postgres'
      ? rows(
          `SELECT c.relname::text AS table_name, a.attname::text AS column_name FROM pg_class c
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE c.oid IN (${quoted.map((name) => `to_regclass(${name})`).join(', ')})`,
        )
      : rows(
          `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name FROM information_schema.COLUMNS
           WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${quoted.join(', ')})`,
        );
  },
  functions: (signatures: readonly string[]) =>
    rows(`SELECT f.signature::text AS signature FROM (VALUES ${signatures.map((s) => `('${s}')`).join(', ')}) AS f(signature) WHERE to_regprocedure(f.signature) IS NOT NULL`),
};

/** A driver's value as text: MySQL drivers may give information_schema's names as Buffers. */
const text = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString('utf8') : String(value));

/** The schema check of a SQL data layer, and the translation of the errors a missing schema causes. */
export class SqlSchema {
  constructor(
    private readonly driver: Pick<SqlDriver<unknown>, 'run' | 'dialect'>,
    private readonly fix: SchemaFix,
  ) {}

  /** What is missing, as one line (schemaGap); null when all `needs` is there. */
  async check(needs: SchemaNeeds): Promise<string | null> {
    const { dialect } = this.driver;
    const at = needs.at && dialect === 'postgres';
    const tables = Object.keys({ ...BARRIER_TABLE, ...(at ? AT_TABLES : {}) });
    const database = (await this.driver.run(CATALOG.database(dialect))).rows[0]?.name;
    const columns = new Map<string, Set<string>>();
    for (const row of (await this.driver.run(CATALOG.columns(dialect, tables))).rows) {
      const table = text(row.table_name);
      columns.set(table, (columns.get(table) ?? new Set()).add(text(row.column_name)));
    }
    const functions = new Set(at ? (await this.driver.run(CATALOG.functions(AT_FUNCTIONS))).rows.map((row) => text(row.signature)) : []);
    return schemaGap({ database: database === null || database === undefined ? null : text(database), columns, functions }, dialect, needs, this.fix);
  }

  /**
   * Runs `operation`; when it fails on an undefined table, column or function and the catalog
   * says the SDK's schema is what is missing, throws DtxSchemaError naming it instead. Any
   * other failure (an app's own table missing, the database gone) propagates as it came.
   */
  async explain<T>(needs: SchemaNeeds, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof DtxSchemaError || !isUndefinedObjectError(error)) throw error;
      const gap = await this.check(needs).catch(() => null);
      if (gap === null) throw error;
      throw new DtxSchemaError(gap, { cause: error });
    }
  }
}
