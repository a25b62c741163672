/** Reading a driver's error through whatever a library wrapped it in. */

/** The errors a library may wrap a driver's error in, down to the driver's. */
export function* errorChain(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const next = queue.shift();
    if (typeof next !== 'object' || next === null || seen.has(next)) continue;
    seen.add(next);
    const record = next as Record<string, unknown>;
    yield record;
    // TypeORM: driverError; drizzle and others: cause; Sequelize-likes: original; Prisma: meta.driverAdapterError.cause.
    queue.push(record.driverError, record.cause, record.original, record.meta, record.driverAdapterError);
  }
}

/**
 * Undefined table, column or function, as each driver or library says it: Postgres 42P01,
 * 42703, 42883; MySQL/MariaDB ER_NO_SUCH_TABLE (1146, 42S02), ER_BAD_FIELD_ERROR (1054, 42S22);
 * Prisma's driver adapters' kinds. Only a hint: the catalog decides whether it is the SDK's
 * schema that is missing (an app's own table raises the same errors).
 */
const UNDEFINED_OBJECT_CODES = new Set<unknown>(['42P01', '42703', '42883', 'ER_NO_SUCH_TABLE', 'ER_BAD_FIELD_ERROR', '42S02', '42S22', 1146, 1054, '1146', '1054']);
const UNDEFINED_OBJECT_KINDS = new Set<unknown>(['TableDoesNotExist', 'ColumnNotFound']);

export function isUndefinedObjectError(error: unknown): boolean {
  for (const record of errorChain(error)) {
    if ([record.code, record.errno, record.sqlState, record.originalCode].some((code) => UNDEFINED_OBJECT_CODES.has(code))) return true;
    if (UNDEFINED_OBJECT_KINDS.has(record.kind)) return true;
  }
  return false;
}
