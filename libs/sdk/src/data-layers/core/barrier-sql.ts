import type { Json } from '@nest-dtx/protocol';
import type { BarrierInsert, BarrierOrigin } from './barrier-rules.js';
import type { SqlDialect, SqlStatement } from './sql.js';

/** A branch as the barrier's rows key it. */
export interface BranchKey {
  gid: string;
  branchId: string;
}

/**
 * The barrier table's DDL, for a migration of the participant's own database (it lives next to
 * the business tables it protects). Idempotent. gid and branch_id compare byte for byte on
 * MySQL/MariaDB too (their default collations would make `A` and `a` one branch).
 */
export function barrierTableDdl(dialect: SqlDialect): string[] {
  if (dialect === 'postgres') {
    return [
      `CREATE TABLE IF NOT EXISTS dtx_barrier (
        gid        varchar(128) NOT NULL,
        branch_id  varchar(128) NOT NULL,
        phase      varchar(16)  NOT NULL CHECK (phase IN ('phase1', 'commit', 'rollback')),
        origin     varchar(16)  NOT NULL CHECK (origin IN ('phase1', 'commit', 'rollback')),
        result     jsonb        NULL,
        created_at timestamptz  NOT NULL DEFAULT now(),
        PRIMARY KEY (gid, branch_id, phase)
      )`,
      `CREATE INDEX IF NOT EXISTS dtx_barrier_created_idx ON dtx_barrier (created_at)`,
    ];
  }
  return [
    `CREATE TABLE IF NOT EXISTS dtx_barrier (
      gid        varchar(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      branch_id  varchar(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      phase      varchar(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL CHECK (phase IN ('phase1', 'commit', 'rollback')),
      origin     varchar(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL CHECK (origin IN ('phase1', 'commit', 'rollback')),
      result     longtext     CHARACTER SET utf8mb4 NULL,
      created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
      PRIMARY KEY (gid, branch_id, phase),
      KEY dtx_barrier_created_idx (created_at)
    ) ENGINE = InnoDB`,
  ];
}

/** The barrier table's removal, for a migration's `down`. */
export function dropBarrierTableDdl(): string[] {
  return ['DROP TABLE IF EXISTS dtx_barrier'];
}

const statement = (text: string, values: readonly unknown[] = [], reads: SqlStatement['reads'] = 'count'): SqlStatement => ({ text, values, reads });

function wholeMs(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error(`lock timeout must be a positive whole number of milliseconds (got ${ms})`);
  return ms;
}

/** The phase-1 row found in place, as the barrier reads it. */
export interface StoredPhase1 {
  origin: BarrierOrigin;
  result: Json;
}

/** The barrier's statements in one dialect. */
export class BarrierSql {
  constructor(readonly dialect: SqlDialect) {}

  /** Bounds row-lock waits for the rest of the local transaction (MySQL: of the session; it has no per-transaction setting). */
  lockTimeout(ms: number): SqlStatement {
    return this.dialect === 'postgres'
      ? statement(`SET LOCAL lock_timeout = '${wholeMs(ms)}ms'`)
      : statement(`SET SESSION innodb_lock_wait_timeout = ${Math.ceil(wholeMs(ms) / 1000)}`);
  }

  /** Inserts the row unless its slot is taken: affected 1 if it took, 0 if not. Waits for a competing uncommitted insert. */
  insert(key: BranchKey, insert: BarrierInsert): SqlStatement {
    const values = [key.gid, key.branchId, insert.slot, insert.origin];
    return this.dialect === 'postgres'
      ? statement(`INSERT INTO dtx_barrier (gid, branch_id, phase, origin) VALUES (?, ?, ?, ?) ON CONFLICT (gid, branch_id, phase) DO NOTHING`, values)
      : statement(`INSERT IGNORE INTO dtx_barrier (gid, branch_id, phase, origin) VALUES (?, ?, ?, ?)`, values);
  }

  /** The phase-1 row, its result as JSON text on both dialects. */
  selectPhase1(key: BranchKey): SqlStatement {
    const result = this.dialect === 'postgres' ? 'result::text' : 'result';
    return statement(`SELECT origin, ${result} AS result FROM dtx_barrier WHERE gid = ? AND branch_id = ? AND phase = 'phase1'`, [key.gid, key.branchId], 'rows');
  }

  storeResult(key: BranchKey, result: Json): SqlStatement {
    const value = this.dialect === 'postgres' ? 'CAST(? AS jsonb)' : '?';
    return statement(`UPDATE dtx_barrier SET result = ${value} WHERE gid = ? AND branch_id = ? AND phase = 'phase1'`, [
      JSON.stringify(result),
      key.gid,
      key.branchId,
    ]);
  }

  /** Reads a row of selectPhase1. */
  static storedPhase1(row: Record<string, unknown> | undefined): StoredPhase1 | null {
    if (!row) return null;
    const raw = row.result;
    const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : raw;
    return { origin: row.origin as BarrierOrigin, result: typeof text === 'string' ? (JSON.parse(text) as Json) : null };
  }

  /**
   * Postgres: one statement deletes at most `batchSize` rows of branches whose every row is
   * older than the retention, skipping rows a running phase holds. Its only row is `removed`.
   */
  deleteExpired(retentionMs: number, batchSize: number): SqlStatement {
    return statement(
      `WITH expired AS (
         SELECT b.gid, b.branch_id, b.phase FROM dtx_barrier b
         WHERE b.created_at < now() - CAST(? AS bigint) * interval '1 millisecond'
           AND NOT EXISTS (
             SELECT 1 FROM dtx_barrier younger
             WHERE younger.gid = b.gid AND younger.branch_id = b.branch_id
               AND younger.created_at >= now() - CAST(? AS bigint) * interval '1 millisecond')
         ORDER BY b.created_at
         LIMIT ${wholeCount(batchSize)}
         FOR UPDATE SKIP LOCKED
       ), removed AS (
         DELETE FROM dtx_barrier d USING expired x
         WHERE d.gid = x.gid AND d.branch_id = x.branch_id AND d.phase = x.phase
         RETURNING 1
       )
       SELECT count(*)::int AS removed FROM removed`,
      [retentionMs, retentionMs],
      'rows',
    );
  }

  /**
   * MySQL/MariaDB, which cannot delete from a table it reads in a subquery: the expired rows,
   * locked (skipping rows a running phase holds), to be deleted by deleteRows in the same
   * transaction.
   */
  selectExpired(retentionMs: number, batchSize: number): SqlStatement {
    return statement(
      `SELECT b.gid, b.branch_id, b.phase FROM dtx_barrier b
       WHERE b.created_at < NOW(3) - INTERVAL ? MICROSECOND
         AND NOT EXISTS (
           SELECT 1 FROM dtx_barrier younger
           WHERE younger.gid = b.gid AND younger.branch_id = b.branch_id
             AND younger.created_at >= NOW(3) - INTERVAL ? MICROSECOND)
       ORDER BY b.created_at
       LIMIT ${wholeCount(batchSize)}
       FOR UPDATE SKIP LOCKED`,
      [retentionMs * 1000, retentionMs * 1000],
      'rows',
    );
  }

  deleteRows(rows: readonly { gid: string; branch_id: string; phase: string }[]): SqlStatement {
    const tuples = rows.map(() => '(?, ?, ?)').join(', ');
    return statement(
      `DELETE FROM dtx_barrier WHERE (gid, branch_id, phase) IN (${tuples})`,
      rows.flatMap((row) => [row.gid, row.branch_id, row.phase]),
    );
  }
}

function wholeCount(n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`batch size must be a positive whole number (got ${n})`);
  return n;
}
