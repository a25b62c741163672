import type { BarrierInsert, BarrierOrigin, BarrierSlot } from './barrier-rules.js';
import type { SqlDialect, SqlStatement } from './sql.js';
import { ONGOING_MARKER_TEXT, readStoredAnswer, type StoredAnswer } from './stored-answer.js';

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

/** A row found in place, as the barrier reads it: who wrote it and the answer it keeps. */
export interface StoredRow {
  origin: BarrierOrigin;
  answer: StoredAnswer;
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

  /**
   * A slot's row, its result as JSON text on both dialects.
   * - `read`, to decide: Postgres reads plainly (READ COMMITTED: each statement sees what has
   *   committed). MySQL/MariaDB read it LOCK IN SHARE MODE, a locking read: it sees the latest
   *   committed row, and it does not open the transaction's REPEATABLE READ snapshot, which the
   *   business method's own reads would otherwise see from before a call that ran meanwhile. The
   *   shared lock goes with the one the insert that found the row already holds, so duplicates
   *   do not block one another.
   * - `update`: FOR UPDATE, taken before a phase runs its business method again over an ongoing
   *   answer, so that two repeats of the call, or a repeat and its rollback, run one after the
   *   other, each on what the other left.
   */
  selectSlot(key: BranchKey, slot: BarrierSlot, lock: 'read' | 'update'): SqlStatement {
    const result = this.dialect === 'postgres' ? 'result::text' : 'result';
    const locking = lock === 'update' ? ' FOR UPDATE' : this.dialect === 'postgres' ? '' : ' LOCK IN SHARE MODE';
    return statement(`SELECT origin, ${result} AS result FROM dtx_barrier WHERE gid = ? AND branch_id = ? AND phase = ?${locking}`, [key.gid, key.branchId, slot], 'rows');
  }

  /** Writes a slot's stored answer (stored-answer.ts's text). */
  storeAnswer(key: BranchKey, slot: BarrierSlot, text: string): SqlStatement {
    const value = this.dialect === 'postgres' ? 'CAST(? AS jsonb)' : '?';
    return statement(`UPDATE dtx_barrier SET result = ${value} WHERE gid = ? AND branch_id = ? AND phase = ?`, [text, key.gid, key.branchId, slot]);
  }

  /**
   * A rollback's take-over of a phase 1 still ongoing: its row becomes a rollback marker (origin
   * rollback, nothing stored), so that a phase 1 arriving later refuses (anti-hanging). Only if
   * it is ongoing: a phase 1 that answered for good keeps its row and result. The row lock it
   * takes waits for a repeat of phase 1 still running, and then looks at what it left.
   */
  takeOverOngoingPhase1(key: BranchKey): SqlStatement {
    const ongoing = this.dialect === 'postgres' ? 'CAST(? AS jsonb)' : '?';
    return statement(
      `UPDATE dtx_barrier SET origin = 'rollback', result = NULL
       WHERE gid = ? AND branch_id = ? AND phase = 'phase1' AND origin = 'phase1' AND result = ${ongoing}`,
      [key.gid, key.branchId, ONGOING_MARKER_TEXT],
    );
  }

  /** Reads a row of selectSlot; null when there is none. */
  static storedRow(row: Record<string, unknown> | undefined): StoredRow | null {
    if (!row) return null;
    const raw = row.result;
    const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : raw;
    return { origin: row.origin as BarrierOrigin, answer: readStoredAnswer(typeof text === 'string' ? text : null) };
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
