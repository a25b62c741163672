import { sql } from 'drizzle-orm';
import { check, index, jsonb, pgTable, primaryKey, timestamp, varchar } from 'drizzle-orm/pg-core';

/**
 * The barrier table on Postgres as a drizzle table, for drizzle-kit users: export it from your
 * schema file and drizzle-kit generates the table of `barrierTableDdl('postgres')`. The
 * constraint names are the ones Postgres gives that DDL's unnamed constraints, so a table made
 * by either is the same to drizzle-kit. The SDK itself reads and writes the table with its own
 * SQL; you need not query it.
 */
export const dtxBarrierPg = pgTable(
  'dtx_barrier',
  {
    gid: varchar('gid', { length: 128 }).notNull(),
    branchId: varchar('branch_id', { length: 128 }).notNull(),
    phase: varchar('phase', { length: 16 }).notNull(),
    origin: varchar('origin', { length: 16 }).notNull(),
    result: jsonb('result'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    primaryKey({ name: 'dtx_barrier_pkey', columns: [table.gid, table.branchId, table.phase] }),
    index('dtx_barrier_created_idx').on(table.createdAt),
    check('dtx_barrier_phase_check', sql`phase IN ('phase1', 'commit', 'rollback')`),
    check('dtx_barrier_origin_check', sql`origin IN ('phase1', 'commit', 'rollback')`),
  ],
);
