/**
 * What the bench reads around a run: CPU time of processes (/proc), the cluster's transaction
 * id counter and pg_stat_database.xact_commit (Postgres), and the coordinator's counts by
 * status (GET /admin/stats) to wait until every transaction of a run is terminal.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import type { TransactionCounts } from '@nest-dtx/protocol';
import { PG_ADMIN_URL } from '../../../test/support/databases.js';
import { sleep } from '../stack.js';
import { getOk } from './http-client.js';

export const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of `pid` in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return Number(rest[14 - 3]) + Number(rest[15 - 3]);
}

export const totalCpuTicks = (pids: number[]): number => pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);

export const ticksToMs = (ticks: number): number => (ticks * 1000) / CLOCK_TICKS_PER_SECOND;

/** Every Postgres server process on this machine (postmaster and backends), for its CPU time. */
export function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** CPU time of every Postgres process, counting those that ended meanwhile through their parent's cutime/cstime. */
export function postgresCpuTicks(): number {
  let ticks = 0;
  for (const pid of postgresPids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[14 - 3]) + Number(rest[15 - 3]) + Number(rest[16 - 3]) + Number(rest[17 - 3]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}

/** One connection to the cluster's admin database, for the counters. */
export class PostgresProbe {
  private constructor(private readonly client: pg.Client) {}

  static async open(): Promise<PostgresProbe> {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    return new PostgresProbe(client);
  }

  /**
   * The next transaction id the cluster will assign: its delta is the number of write
   * transactions anyone committed (or aborted) meanwhile. Reading it assigns none, unlike
   * pg_current_xact_id().
   */
  async nextXid(): Promise<number> {
    const rows = await this.client.query<{ n: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n');
    return Number(rows.rows[0].n);
  }

  /** pg_stat_database.xact_commit of `database` (it lags up to ~10 s behind an idle backend). */
  async xactCommits(database: string): Promise<number> {
    await this.client.query('SELECT pg_stat_clear_snapshot()');
    const rows = await this.client.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1', [database]);
    return Number(rows.rows[0]?.n ?? 0);
  }

  /**
   * Databases, other than `own`, with a client session other than this one that was active at
   * some point since `since` (a session idle since before that did nothing meanwhile).
   */
  async busyDatabasesSince(since: Date, own: string[]): Promise<string[]> {
    const rows = await this.client.query<{ datname: string }>(
      `SELECT DISTINCT datname FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname IS NOT NULL
          AND NOT (datname = ANY($1)) AND (state <> 'idle' OR state_change >= $2)
        ORDER BY 1`,
      [own, since.toISOString()],
    );
    return rows.rows.map((row) => row.datname);
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

const TERMINAL = new Set(['committed', 'rolled_back']);

export interface StatusCounts {
  nonTerminal: number;
  byStatus: Record<string, number>;
}

export async function statusCounts(coordinatorUrl: string): Promise<StatusCounts> {
  const counts = await getOk<TransactionCounts>(`${coordinatorUrl}/admin/stats`);
  const nonTerminal = Object.entries(counts.byStatus)
    .filter(([status]) => !TERMINAL.has(status))
    .reduce((sum, [, n]) => sum + n, 0);
  return { nonTerminal, byStatus: counts.byStatus };
}

/**
 * Polls the counts until no more transactions are non-terminal than `allowed` (those left over
 * from earlier runs). Gives up when the count has not gone down for `stallMs` (a transaction
 * waiting for a retry that only recovery, made rare for the bench, would deliver), or after
 * `timeoutMs` in all. Returns the last counts.
 */
export async function drain(coordinatorUrl: string, allowed: number, stallMs = 60_000, timeoutMs = 900_000, everyMs = 50): Promise<StatusCounts> {
  const deadline = Date.now() + timeoutMs;
  let lowest = Number.POSITIVE_INFINITY;
  let progressAt = Date.now();
  for (;;) {
    const counts = await statusCounts(coordinatorUrl);
    if (counts.nonTerminal <= allowed) return counts;
    if (counts.nonTerminal < lowest) {
      lowest = counts.nonTerminal;
      progressAt = Date.now();
    }
    if (Date.now() - progressAt > stallMs || Date.now() > deadline) return counts;
    await sleep(everyMs);
  }
}
