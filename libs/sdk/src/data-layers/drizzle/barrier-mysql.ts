import { sql } from 'drizzle-orm';
import { check, customType, index, mysqlTable, primaryKey, timestamp } from 'drizzle-orm/mysql-core';

/**
 * A column whose SQL type is written out: drizzle's MySQL columns take no character set nor
 * collation, and the barrier's keys must compare byte for byte (ascii_bin), its result keep any
 * Unicode (utf8mb4), whatever the database's defaults.
 */
const typed = (type: string) => customType<{ data: string; driverData: string }>({ dataType: () => type });
const asciiBin = (length: number) => typed(`varchar(${length}) CHARACTER SET ascii COLLATE ascii_bin`);

/**
 * The barrier table on MySQL/MariaDB as a drizzle table, for drizzle-kit users: export it from
 * your schema file and drizzle-kit generates the table of `barrierTableDdl('mysql')`: the same
 * columns, types, character sets and collations, primary key, index and checks. Drizzle cannot
 * say `ENGINE = InnoDB`, the default engine of MySQL and MariaDB; on a server whose default is
 * another engine, use the DDL. The check names are this definition's own (MySQL and MariaDB
 * name the DDL's unnamed checks differently). The SDK itself reads and writes the table with
 * its own SQL; you need not query it.
 */
export const dtxBarrierMysql = mysqlTable(
  'dtx_barrier',
  {
    gid: asciiBin(128)('gid').notNull(),
    branchId: asciiBin(128)('branch_id').notNull(),
    phase: asciiBin(16)('phase').notNull(),
    origin: asciiBin(16)('origin').notNull(),
    result: typed('longtext CHARACTER SET utf8mb4')('result'),
    createdAt: timestamp('created_at', { fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`),
  },
  (table) => [
    primaryKey({ columns: [table.gid, table.branchId, table.phase] }),
    index('dtx_barrier_created_idx').on(table.createdAt),
    check('dtx_barrier_phase_check', sql`phase IN ('phase1', 'commit', 'rollback')`),
    check('dtx_barrier_origin_check', sql`origin IN ('phase1', 'commit', 'rollback')`),
  ],
);
