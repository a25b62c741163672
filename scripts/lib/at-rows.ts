/**
 * What AT mode keeps in a participant's own database (libs/sdk/src/data-layers/core/at-sql.ts):
 * `dtx_at_undo` (before/after images) and `dtx_at_lock` (row locks), per global transaction.
 * Once a transaction has ended and the participant's clean-up ran, none of its rows is left;
 * the AT demo and the chaos runner read them straight from the bank's database to check that.
 */
import type pg from 'pg';

export interface AtRowCounts {
  undo: number;
  locks: number;
}

/** Anything that runs a query: a pg.Client or a pg.Pool. */
type Queryable = Pick<pg.Pool, 'query'>;

/** How many undo and lock rows there are, of one global transaction or of all. */
export async function countAtRows(db: Queryable, gid?: string): Promise<AtRowCounts> {
  const where = gid === undefined ? '' : 'WHERE gid = $1';
  const { rows } = await db.query<AtRowCounts>(
    `SELECT (SELECT count(*) FROM dtx_at_undo ${where})::int AS undo, (SELECT count(*) FROM dtx_at_lock ${where})::int AS locks`,
    gid === undefined ? [] : [gid],
  );
  return rows[0];
}

/** The undo and lock rows there are, by global transaction. */
export async function atRowsByGid(db: Queryable): Promise<Map<string, AtRowCounts>> {
  const { rows } = await db.query<{ gid: string; undo: number; locks: number }>(
    `SELECT gid, sum(undo)::int AS undo, sum(locks)::int AS locks FROM (
       SELECT gid, 1 AS undo, 0 AS locks FROM dtx_at_undo
       UNION ALL SELECT gid, 0, 1 FROM dtx_at_lock
     ) r GROUP BY gid`,
  );
  return new Map(rows.map((row) => [row.gid, { undo: row.undo, locks: row.locks }]));
}
