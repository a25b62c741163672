import { describe, expect, it } from 'vitest';
import { isUndefinedObjectError } from './driver-errors.js';
import { AT_FUNCTIONS, AT_TABLES, BARRIER_TABLE, DtxSchemaError, schemaGap, SqlSchema, type SchemaFound } from './schema.js';
import type { SqlResult, SqlStatement } from './sql.js';

const fix = { barrier: 'add ...dtxMigrations', at: 'add the AT migration' };

/** What the catalog would hold with these tables whole, and these functions. */
function found(tables: Record<string, readonly string[]>, functions: readonly string[] = [], database: string | null = 'shop'): SchemaFound {
  return { database, columns: new Map(Object.entries(tables).map(([table, columns]) => [table, new Set(columns)])), functions: new Set(functions) };
}

const whole = found({ ...BARRIER_TABLE, ...AT_TABLES }, AT_FUNCTIONS);

describe('schemaGap', () => {
  it('is null when everything needed is there', () => {
    expect(schemaGap(whole, 'postgres', { at: true }, fix)).toBeNull();
    expect(schemaGap(found(BARRIER_TABLE), 'postgres', { at: false }, fix)).toBeNull();
    // MySQL/MariaDB have no AT mode: nothing of it is asked for.
    expect(schemaGap(found(BARRIER_TABLE), 'mysql', { at: true }, fix)).toBeNull();
  });

  it('names the missing table, the database and the fix', () => {
    expect(schemaGap(found({}), 'postgres', { at: false }, fix)).toBe('table dtx_barrier is missing in database shop: add ...dtxMigrations');
  });

  it('names missing columns of a table that is there', () => {
    const partial = found({ dtx_barrier: ['gid', 'branch_id', 'phase', 'created_at'] });
    expect(schemaGap(partial, 'mysql', { at: false }, fix)).toBe('columns dtx_barrier.origin, dtx_barrier.result are missing in database shop: add ...dtxMigrations');
  });

  it('names AT tables and functions with their own fix, after the barrier’s', () => {
    expect(schemaGap(found(BARRIER_TABLE), 'postgres', { at: true }, fix)).toBe(
      'tables dtx_at_undo, dtx_at_lock and functions dtx_at_row_key, dtx_at_lock_holder, dtx_at_capture, dtx_at_refuse_truncate, dtx_at_undo_branch are missing in database shop: add the AT migration',
    );
    expect(schemaGap(found({ ...AT_TABLES }, AT_FUNCTIONS.slice(1)), 'postgres', { at: true }, fix)).toBe(
      'table dtx_barrier and function dtx_at_row_key are missing in database shop: add ...dtxMigrations; add the AT migration',
    );
    // One migration for both (TypeORM's dtxMigrations): said once.
    expect(schemaGap(found({}), 'postgres', { at: true }, { barrier: 'add ...dtxMigrations', at: 'add ...dtxMigrations' })).toMatch(/: add \.\.\.dtxMigrations$/);
  });

  it('says when a MySQL connection has no default database', () => {
    expect(schemaGap(found({}, [], null), 'mysql', { at: false }, fix)).toMatch(/^the connections have no default database/);
  });

  it('stays well under the 500 characters the coordinator keeps of an answer, at its longest', () => {
    const longest = schemaGap(found({}, [], 'a_database_name_of_sixty_three_characters_xxxxxxxxxxxxxxxxxxxx'), 'postgres', { at: true }, {
      barrier: "add a migration.sql of barrierTableDdl('postgres') (@nest-dtx/sdk/prisma) and run prisma migrate deploy",
      at: 'add one of atSchemaDdl() the same way',
    });
    expect(JSON.stringify({ statusCode: 503, error: 'DTX_SCHEMA_MISSING', message: longest }).length).toBeLessThan(500);
  });
});

describe('isUndefinedObjectError', () => {
  it('reads the codes of every driver and library the SDK supports, wrapped or not', () => {
    const pg = Object.assign(new Error('relation "dtx_barrier" does not exist'), { code: '42P01' });
    const mysql = Object.assign(new Error("Table 'shop.dtx_barrier' doesn't exist"), { code: 'ER_NO_SUCH_TABLE', errno: 1146, sqlState: '42S02' });
    const errors = [
      pg,
      Object.assign(new Error('column "origin" does not exist'), { code: '42703' }),
      Object.assign(new Error('function dtx_at_undo_branch(unknown, unknown) does not exist'), { code: '42883' }),
      mysql,
      Object.assign(new Error("Unknown column 'origin' in 'field list'"), { errno: 1054 }),
      // TypeORM's QueryFailedError
      Object.assign(new Error(pg.message), { driverError: pg }),
      // drizzle's DrizzleQueryError
      new Error('Failed query: INSERT INTO dtx_barrier ...', { cause: mysql }),
      // MikroORM's TableNotFoundException carries the code itself
      Object.assign(new Error(`SELECT 1 FROM dtx_barrier - ${pg.message}`), { name: 'TableNotFoundException', code: '42P01' }),
      // Prisma 7 with a driver adapter
      Object.assign(new Error('Raw query failed. Code: `42P01`.'), {
        code: 'P2010',
        meta: { driverAdapterError: Object.assign(new Error('TableDoesNotExist'), { cause: { originalCode: '42P01', kind: 'TableDoesNotExist', table: 'dtx_barrier' } }) },
      }),
    ];
    for (const error of errors) expect(isUndefinedObjectError(error)).toBe(true);
  });

  it('leaves other failures alone', () => {
    for (const error of [new Error('boom'), Object.assign(new Error('lock timeout'), { code: '55P03' }), Object.assign(new Error('dup'), { errno: 1062 }), 'text', null]) {
      expect(isUndefinedObjectError(error)).toBe(false);
    }
  });
});

describe('SqlSchema.explain', () => {
  /** A driver whose catalog holds `tables`: the statements the check runs, answered from them. */
  function catalog(tables: Record<string, readonly string[]>) {
    const run = (statement: SqlStatement): Promise<SqlResult> => {
      if (statement.text.includes('current_database')) return Promise.resolve({ rows: [{ name: 'shop' }], affected: 0 });
      const rows = Object.entries(tables).flatMap(([table, columns]) => columns.map((column) => ({ table_name: table, column_name: column })));
      return Promise.resolve({ rows, affected: 0 });
    };
    return new SqlSchema({ dialect: 'postgres', run }, fix);
  }
  const undefinedTable = (name: string) => Object.assign(new Error(`relation "${name}" does not exist`), { code: '42P01' });

  it('turns an undefined-table error into DtxSchemaError when the catalog says the SDK’s table is missing', async () => {
    const cause = undefinedTable('dtx_barrier');
    const thrown = await catalog({}).explain({ at: false }, () => Promise.reject(cause)).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(DtxSchemaError);
    expect(thrown).toMatchObject({ message: 'table dtx_barrier is missing in database shop: add ...dtxMigrations', cause });
  });

  it('lets the error through as it came when the SDK’s schema is whole (an app’s own table is missing), and any other error untouched', async () => {
    const own = undefinedTable('ledger');
    await expect(catalog(BARRIER_TABLE).explain({ at: false }, () => Promise.reject(own))).rejects.toBe(own);
    const other = new Error('connection reset');
    await expect(catalog({}).explain({ at: false }, () => Promise.reject(other))).rejects.toBe(other);
    expect(await catalog({}).explain({ at: false }, () => Promise.resolve(7))).toBe(7);
  });
});
