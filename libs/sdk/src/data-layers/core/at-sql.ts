import type { BranchKey } from './barrier-sql.js';
import type { SqlStatement } from './sql.js';

/**
 * AT mode's SQL on Postgres: the undo log and the row locks, kept by row triggers in the
 * participant's own database, so that whatever SQL or ORM wrote a row, its before and after
 * images are recorded and the row is locked for the global transaction, without parsing SQL.
 *
 * - `dtx_at_undo`: one row per changed row, in the order of the changes: the table, its
 *   primary-key columns, the image before (null for an insert) and after (null for a delete).
 * - `dtx_at_lock`: one row per locked row, unique per (table, primary key): the global
 *   transaction and branch that hold it, and since when.
 * - `dtx_at_capture()`: the row trigger on every table an AT action may write. Inside an AT
 *   branch (the SDK sets `dtx.at_gid` / `dtx.at_branch_id` in the local transaction) it takes
 *   the row's lock and appends the undo row. Outside one (plain application code, another
 *   mode's action) it refuses a write to a row a global transaction holds. A lock whose branch
 *   has committed (its barrier `commit` row exists) is released, even before the background
 *   clean-up deletes it.
 * - `dtx_at_undo_branch(gid, branch)`: the rollback: restores the before images newest first,
 *   each only if the row still equals its after image; at the first row that does not, it stops
 *   and returns the difference (the caller then rolls the whole local transaction back, so
 *   nothing was restored and the locks stay). Then it deletes the branch's undo and lock rows.
 *
 * Images are `to_jsonb` of the row, made and compared with the same settings (UTC, ISO
 * intervals, exact floats) whatever the session's, so a row that was not touched compares
 * equal to the image taken in another session.
 */

/** The SQLSTATE of a lock held by another global transaction (AT phase 1: wait and try again). */
export const AT_LOCK_CONFLICT_SQLSTATE = 'DXL01';
/** The SQLSTATE of a plain write refused because a global transaction holds the row. */
export const AT_ROW_LOCKED_SQLSTATE = 'DXL02';
/** Message prefixes of the same errors, for libraries that drop the SQLSTATE on the way. */
export const AT_LOCK_CONFLICT_MARK = 'dtx-at-lock-conflict';
export const AT_ROW_LOCKED_MARK = 'dtx-at-row-locked';

/** The trigger's name on every AT table. */
export const AT_TRIGGER_NAME = 'dtx_at_capture';

/** Settings the images are made and compared with (function-level SET clauses). */
const IMAGE_SETTINGS = `SET "TimeZone" = 'UTC' SET "IntervalStyle" = 'postgres' SET extra_float_digits = 1`;

/** The AT schema: tables and functions, idempotent. Needs the barrier table (barrierTableDdl) first. */
export function atSchemaDdl(): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS dtx_at_undo (
      seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      gid          varchar(128) NOT NULL,
      branch_id    varchar(128) NOT NULL,
      table_name   text         NOT NULL,
      key_columns  text[]       NOT NULL,
      before_image jsonb        NULL,
      after_image  jsonb        NULL,
      created_at   timestamptz  NOT NULL DEFAULT now()
    )`,
    `CREATE INDEX IF NOT EXISTS dtx_at_undo_branch_idx ON dtx_at_undo (gid, branch_id, seq)`,
    `CREATE TABLE IF NOT EXISTS dtx_at_lock (
      table_name text         NOT NULL,
      row_key    text         NOT NULL,
      gid        varchar(128) NOT NULL,
      branch_id  varchar(128) NOT NULL,
      locked_at  timestamptz  NOT NULL DEFAULT now(),
      PRIMARY KEY (table_name, row_key)
    )`,
    `CREATE INDEX IF NOT EXISTS dtx_at_lock_branch_idx ON dtx_at_lock (gid, branch_id)`,
    // The primary key of a row image, as the lock's row_key: a JSON array of the key's values.
    `CREATE OR REPLACE FUNCTION dtx_at_row_key(image jsonb, key_columns text[]) RETURNS text
      LANGUAGE sql IMMUTABLE AS $fn$
        SELECT jsonb_agg(image -> c ORDER BY o)::text FROM unnest(key_columns) WITH ORDINALITY AS k(c, o)
      $fn$`,
    // Who holds a row's lock, if a global transaction that has not committed does: (gid, branch_id) or no row.
    `CREATE OR REPLACE FUNCTION dtx_at_lock_holder(p_table text, p_key text) RETURNS TABLE (gid varchar, branch_id varchar, locked_at timestamptz)
      LANGUAGE sql STABLE AS $fn$
        SELECT l.gid, l.branch_id, l.locked_at FROM dtx_at_lock l
        WHERE l.table_name = p_table AND l.row_key = p_key
          AND NOT EXISTS (SELECT 1 FROM dtx_barrier b WHERE b.gid = l.gid AND b.branch_id = l.branch_id AND b.phase = 'commit')
      $fn$`,
    `CREATE OR REPLACE FUNCTION dtx_at_capture() RETURNS trigger
      LANGUAGE plpgsql ${IMAGE_SETTINGS} AS $fn$
      DECLARE
        v_gid    text := nullif(current_setting('dtx.at_gid', true), '');
        v_branch text := current_setting('dtx.at_branch_id', true);
        v_table  text := quote_ident(TG_TABLE_SCHEMA) || '.' || quote_ident(TG_TABLE_NAME);
        v_old    jsonb;
        v_new    jsonb;
        v_keys   text[] := '{}';
        v_key    text;
        v_holder record;
      BEGIN
        IF current_setting('dtx.at_undoing', true) = 'on' THEN RETURN NULL; END IF;
        IF TG_OP <> 'INSERT' THEN v_old := to_jsonb(OLD); v_keys := v_keys || dtx_at_row_key(v_old, TG_ARGV); END IF;
        IF TG_OP <> 'DELETE' THEN
          v_new := to_jsonb(NEW);
          v_key := dtx_at_row_key(v_new, TG_ARGV);
          IF NOT v_key = ANY (v_keys) THEN v_keys := v_keys || v_key; END IF;
        END IF;
        -- An update that changes nothing has nothing to undo and cannot make a dirty write.
        IF TG_OP = 'UPDATE' AND v_old = v_new THEN RETURN NULL; END IF;
        FOREACH v_key IN ARRAY v_keys LOOP
          SELECT h.gid, h.branch_id INTO v_holder FROM dtx_at_lock_holder(v_table, v_key) h;
          IF FOUND THEN
            IF v_gid IS NULL THEN
              RAISE EXCEPTION USING ERRCODE = 'DXL02',
                MESSAGE = format('dtx-at-row-locked: row %s of %s is locked by global transaction %s (branch %s) until it ends', v_key, v_table, v_holder.gid, v_holder.branch_id);
            ELSIF v_holder.gid <> v_gid OR v_holder.branch_id <> v_branch THEN
              RAISE EXCEPTION USING ERRCODE = 'DXL01',
                MESSAGE = format('dtx-at-lock-conflict: row %s of %s is locked by global transaction %s (branch %s)', v_key, v_table, v_holder.gid, v_holder.branch_id),
                DETAIL = json_build_object('table', v_table, 'key', v_key, 'gid', v_holder.gid, 'branchId', v_holder.branch_id)::text;
            END IF;
          ELSIF v_gid IS NOT NULL THEN
            -- Free, or held by a branch that has committed: take it (the committed one's undo
            -- rows go with the background clean-up, by branch).
            INSERT INTO dtx_at_lock AS l (table_name, row_key, gid, branch_id) VALUES (v_table, v_key, v_gid, v_branch)
              ON CONFLICT (table_name, row_key) DO UPDATE SET gid = excluded.gid, branch_id = excluded.branch_id, locked_at = now();
          END IF;
        END LOOP;
        IF v_gid IS NOT NULL THEN
          INSERT INTO dtx_at_undo (gid, branch_id, table_name, key_columns, before_image, after_image)
            VALUES (v_gid, v_branch, v_table, TG_ARGV, v_old, v_new);
        END IF;
        RETURN NULL;
      END
      $fn$`,
    // TRUNCATE fires no row trigger: refuse it on a table with rows a global transaction holds.
    `CREATE OR REPLACE FUNCTION dtx_at_refuse_truncate() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      DECLARE v_table text := quote_ident(TG_TABLE_SCHEMA) || '.' || quote_ident(TG_TABLE_NAME);
      BEGIN
        IF EXISTS (SELECT 1 FROM dtx_at_lock l WHERE l.table_name = v_table
                   AND NOT EXISTS (SELECT 1 FROM dtx_barrier b WHERE b.gid = l.gid AND b.branch_id = l.branch_id AND b.phase = 'commit')) THEN
          RAISE EXCEPTION USING ERRCODE = 'DXL02', MESSAGE = format('dtx-at-row-locked: %s has rows locked by global transactions: it cannot be truncated now', v_table);
        END IF;
        RETURN NULL;
      END
      $fn$`,
    `CREATE OR REPLACE FUNCTION dtx_at_undo_branch(p_gid text, p_branch text) RETURNS jsonb
      LANGUAGE plpgsql ${IMAGE_SETTINGS} AS $fn$
      DECLARE
        u        record;
        v_rel    regclass;
        v_cols   text;
        v_set    text;
        v_match  text;
        v_found  jsonb;
      BEGIN
        PERFORM set_config('dtx.at_undoing', 'on', true);
        FOR u IN SELECT * FROM dtx_at_undo WHERE gid = p_gid AND branch_id = p_branch ORDER BY seq DESC LOOP
          v_rel := u.table_name::regclass;
          -- Every stored column but generated ones; GENERATED ALWAYS identity columns only on insert.
          SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
                 string_agg(quote_ident(attname), ', ' ORDER BY attnum) FILTER (WHERE attidentity <> 'a')
            INTO v_cols, v_set
            FROM pg_attribute WHERE attrelid = v_rel AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
          SELECT string_agg(format('t.%1$I IS NOT DISTINCT FROM r.%1$I', c), ' AND ') INTO v_match FROM unnest(u.key_columns) c;
          EXECUTE format('SELECT to_jsonb(t) FROM %s t, jsonb_populate_record(NULL::%s, $1) r WHERE %s FOR UPDATE OF t', v_rel, v_rel, v_match)
            INTO v_found USING coalesce(u.after_image, u.before_image);
          IF v_found IS DISTINCT FROM u.after_image THEN
            PERFORM set_config('dtx.at_undoing', 'off', true);
            RETURN jsonb_build_object('table', u.table_name, 'key', dtx_at_row_key(coalesce(u.after_image, u.before_image), u.key_columns),
              'operation', CASE WHEN u.before_image IS NULL THEN 'insert' WHEN u.after_image IS NULL THEN 'delete' ELSE 'update' END,
              'expected', u.after_image, 'found', v_found);
          END IF;
          IF u.after_image IS NULL THEN
            EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM jsonb_populate_record(NULL::%s, $1)', v_rel, v_cols, v_cols, v_rel)
              USING u.before_image;
          ELSIF u.before_image IS NULL THEN
            EXECUTE format('DELETE FROM %s t USING jsonb_populate_record(NULL::%s, $1) r WHERE %s', v_rel, v_rel, v_match) USING u.after_image;
          ELSIF v_set IS NOT NULL THEN
            EXECUTE format('UPDATE %s t SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::%s, $1)) FROM jsonb_populate_record(NULL::%s, $2) r WHERE %s',
              v_rel, v_set, v_set, v_rel, v_rel, v_match) USING u.before_image, u.after_image;
          END IF;
        END LOOP;
        DELETE FROM dtx_at_undo WHERE gid = p_gid AND branch_id = p_branch;
        DELETE FROM dtx_at_lock WHERE gid = p_gid AND branch_id = p_branch;
        PERFORM set_config('dtx.at_undoing', 'off', true);
        RETURN NULL;
      END
      $fn$`,
  ];
}

/** The AT schema's removal, for a migration's `down` (the tables' triggers go with CASCADE). */
export function dropAtSchemaDdl(): string[] {
  return [
    'DROP FUNCTION IF EXISTS dtx_at_undo_branch(text, text)',
    'DROP FUNCTION IF EXISTS dtx_at_capture() CASCADE',
    'DROP FUNCTION IF EXISTS dtx_at_refuse_truncate() CASCADE',
    'DROP FUNCTION IF EXISTS dtx_at_lock_holder(text, text)',
    'DROP FUNCTION IF EXISTS dtx_at_row_key(jsonb, text[])',
    'DROP TABLE IF EXISTS dtx_at_lock',
    'DROP TABLE IF EXISTS dtx_at_undo',
  ];
}

const statement = (text: string, values: readonly unknown[] = [], reads: SqlStatement['reads'] = 'count'): SqlStatement => ({ text, values, reads });

/** Quotes an identifier for DDL. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A table an AT action may write, as the catalog describes it. */
export interface AtTableInfo {
  /** `schema.table`, quoted as the trigger names it (the lock rows' table_name). */
  name: string;
  keyColumns: string[];
  /** The arguments its capture trigger has now, if it has one. */
  triggerArgs: string[] | null;
  hasTruncateTrigger: boolean;
}

/** The statements of AT mode. */
export const AtSql = {
  /** The branch's identity in the local transaction (SET LOCAL), which the capture trigger reads. */
  setBranch(key: BranchKey): SqlStatement {
    return statement(`SELECT set_config('dtx.at_gid', ?, true), set_config('dtx.at_branch_id', ?, true)`, [key.gid, key.branchId], 'rows');
  },

  /** The locks the branch holds (at most `limit`), and how many it holds in all. */
  branchLocks(key: BranchKey, limit: number): SqlStatement {
    return statement(
      `SELECT table_name, row_key, count(*) OVER () AS total FROM dtx_at_lock WHERE gid = ? AND branch_id = ? ORDER BY table_name, row_key LIMIT ${Math.trunc(limit)}`,
      [key.gid, key.branchId],
      'rows',
    );
  },

  /** Runs the rollback; its one row's `dirty` is null, or the row that no longer equals its after image. */
  undoBranch(key: BranchKey): SqlStatement {
    return statement(`SELECT dtx_at_undo_branch(?, ?)::text AS dirty`, [key.gid, key.branchId], 'rows');
  },

  /**
   * Deletes the undo and lock rows of the given committed branches. Only of branches that did
   * commit (their barrier row says so): a key given by mistake deletes nothing.
   */
  deleteCommitted(keys: readonly BranchKey[]): SqlStatement {
    const tuples = keys.map(() => '(?, ?)').join(', ');
    return statement(
      `WITH done AS (
         SELECT b.gid, b.branch_id FROM dtx_barrier b
         WHERE b.phase = 'commit' AND (b.gid, b.branch_id) IN (${tuples})
       ), undo AS (
         DELETE FROM dtx_at_undo u USING done WHERE u.gid = done.gid AND u.branch_id = done.branch_id RETURNING 1
       ), locks AS (
         DELETE FROM dtx_at_lock l USING done WHERE l.gid = done.gid AND l.branch_id = done.branch_id RETURNING 1
       )
       SELECT (SELECT count(*) FROM undo)::int AS undo, (SELECT count(*) FROM locks)::int AS locks`,
      keys.flatMap((key) => [key.gid, key.branchId]),
      'rows',
    );
  },

  /** Committed branches that still have undo or lock rows (left by a crash before the clean-up), at most `limit`. */
  committedLeftovers(limit: number): SqlStatement {
    return statement(
      `SELECT DISTINCT x.gid, x.branch_id FROM (
         (SELECT gid, branch_id FROM dtx_at_undo ORDER BY seq LIMIT ${Math.trunc(limit) * 20})
         UNION (SELECT gid, branch_id FROM dtx_at_lock ORDER BY locked_at LIMIT ${Math.trunc(limit) * 20})
       ) x
       WHERE EXISTS (SELECT 1 FROM dtx_barrier b WHERE b.gid = x.gid AND b.branch_id = x.branch_id AND b.phase = 'commit')
       LIMIT ${Math.trunc(limit)}`,
      [],
      'rows',
    );
  },

  /** Whether the AT schema is there (the migration ran). */
  schemaPresent(): SqlStatement {
    return statement(
      `SELECT to_regclass('dtx_at_undo') IS NOT NULL AND to_regclass('dtx_at_lock') IS NOT NULL
              AND to_regprocedure('dtx_at_undo_branch(text,text)') IS NOT NULL AS present`,
      [],
      'rows',
    );
  },

  /** A table's primary key and its AT triggers; no row when the table does not exist. */
  tableInfo(table: string): SqlStatement {
    return statement(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
              (SELECT array_agg(a.attname::text ORDER BY k.o) FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, o)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = c.oid AND i.indisprimary) AS key_columns,
              (SELECT encode(t.tgargs, 'escape') FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '${AT_TRIGGER_NAME}') AS trigger_args,
              EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '${AT_TRIGGER_NAME}_truncate') AS has_truncate_trigger
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.oid = to_regclass(?) AND c.relkind IN ('r', 'p')`,
      [table],
      'rows',
    );
  },

  /** Reads a row of tableInfo. */
  readTableInfo(row: Record<string, unknown>): AtTableInfo {
    const args = typeof row.trigger_args === 'string' ? row.trigger_args.split('\\000').filter((arg) => arg !== '') : null;
    return {
      name: String(row.name),
      keyColumns: Array.isArray(row.key_columns) ? row.key_columns.map(String) : parsePgArray(row.key_columns),
      triggerArgs: args,
      hasTruncateTrigger: row.has_truncate_trigger === true,
    };
  },

  /** The capture trigger (and the truncate guard) on a table, its key columns as arguments. */
  installTriggers(table: AtTableInfo): SqlStatement[] {
    const args = table.keyColumns.map((column) => `'${column.replace(/'/g, "''")}'`).join(', ');
    return [
      statement(`CREATE OR REPLACE TRIGGER ${AT_TRIGGER_NAME} AFTER INSERT OR UPDATE OR DELETE ON ${table.name} FOR EACH ROW EXECUTE FUNCTION dtx_at_capture(${args})`),
      statement(`CREATE OR REPLACE TRIGGER ${ident(`${AT_TRIGGER_NAME}_truncate`)} BEFORE TRUNCATE ON ${table.name} FOR EACH STATEMENT EXECUTE FUNCTION dtx_at_refuse_truncate()`),
    ];
  },

  /** Serialises the trigger installation of several instances starting at once. */
  installLock(): SqlStatement {
    // A row of its own: pg_advisory_xact_lock returns void, which some libraries cannot read (Prisma).
    return statement(`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext('dtx_at_install'))`, [], 'rows');
  },

  /** The holder of one row's lock (no row: free). */
  lockHolder(table: string, rowKey: string): SqlStatement {
    return statement(`SELECT gid, branch_id, locked_at FROM dtx_at_lock_holder(?, ?)`, [table, rowKey], 'rows');
  },

  /**
   * Locks the rows of a read (FOR SHARE, or FOR UPDATE) by primary key given as JSON, and
   * answers the lock key of every row asked for, there or not: a row an AT branch deleted is
   * gone until its rollback may bring it back, and its lock says so.
   */
  lockRowsForRead(table: AtTableInfo, keys: readonly Record<string, unknown>[], strength: 'share' | 'update'): SqlStatement {
    const match = table.keyColumns.map((column) => `t.${ident(column)} IS NOT DISTINCT FROM r.${ident(column)}`).join(' AND ');
    return statement(
      `WITH asked AS (SELECT r.* FROM jsonb_populate_recordset(NULL::${table.name}, CAST(? AS jsonb)) r),
            locked AS (SELECT 1 FROM ${table.name} t, asked r WHERE ${match} FOR ${strength === 'share' ? 'SHARE' : 'UPDATE'} OF t)
       SELECT dtx_at_row_key(to_jsonb(r), CAST(? AS text[])) AS row_key, (SELECT count(*) FROM locked) AS locked FROM asked r`,
      [JSON.stringify(keys), toPgArray(table.keyColumns)],
      'rows',
    );
  },
} as const;

/**
 * The capture triggers of one table, for a database user without DDL rights at run time
 * (`at.installTriggers: false`): `table` as SQL names it (`accounts`, `billing.accounts`), its
 * primary-key columns in key order.
 */
export function atTriggerDdl(table: string, keyColumns: readonly string[]): string[] {
  return AtSql.installTriggers({ name: table, keyColumns: [...keyColumns], triggerArgs: null, hasTruncateTrigger: false }).map((ddl) => ddl.text);
}

/** A text[] parameter, for drivers that do not turn arrays into Postgres arrays themselves. */
function toPgArray(values: readonly string[]): string {
  return `{${values.map((value) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** A text[] as some drivers give it: `{a,b}`. */
function parsePgArray(value: unknown): string[] {
  if (typeof value !== 'string' || value.length < 2) return [];
  return value
    .slice(1, -1)
    .split(',')
    .filter((part) => part !== '')
    .map((part) => part.replace(/^"(.*)"$/, '$1'));
}
