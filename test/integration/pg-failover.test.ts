/**
 * scripts/lib/pg-failover.ts, the replicated Postgres of the fault suite (issue 24): a primary, a
 * synchronous standby and HAProxy in front. Two writers insert rows through the proxy; the
 * primary is killed (SIGKILL) mid-stream and the standby promoted. Every row whose commit was
 * acknowledged is on the new primary, writes go through the proxy again within a bound, none
 * reached the standby while it was read-only, the old primary is unreachable, and stop() leaves
 * no cluster behind.
 *
 * Needs root and Debian's postgresql-15 and haproxy (see the module). Ports 5495-5497.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNames, proxyServerStatus, startReplicatedPostgres, type ReplicatedPostgres } from '../../scripts/lib/pg-failover.js';
import { PG_ADMIN_URL } from '../support/databases.js';

const NAME = 'dtx_failover_test';
const PORTS = { primaryPort: 5495, standbyPort: 5496, proxyPort: 5497 };
/** Rows writer A has acknowledged when the test ends; the primary is killed when it has half of them. */
const ROWS = 300;
/** How long after the kill writes through the proxy must be accepted again. */
const FAILOVER_BOUND_MS = 15_000;

interface Ack {
  id: number;
  /** When the insert was sent, and when its commit was acknowledged. */
  sentAt: number;
  at: number;
}

/**
 * Inserts rows one by one through the proxy, each its own transaction, on one connection that it
 * opens again after an error. An insert that failed is uncertain (the commit may have happened),
 * and the writer goes on with the next id.
 */
class Writer {
  readonly acks: Ack[] = [];
  readonly uncertain: number[] = [];
  readonly errors = new Map<string, number>();
  private client: pg.Client | null = null;
  private nextId: number;
  private stopped = false;
  done: Promise<void> = Promise.resolve();

  constructor(
    readonly label: string,
    firstId: number,
    private readonly url: string,
    private readonly enough: (writer: Writer) => boolean,
  ) {
    this.nextId = firstId;
  }

  start(deadlineMs: number): void {
    const deadline = performance.now() + deadlineMs;
    this.done = (async () => {
      while (!this.stopped && !this.enough(this) && performance.now() < deadline) await this.writeOne();
      await this.client?.end().catch(() => undefined);
    })();
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.done;
  }

  /** Errors whose message says the server was read-only (a standby that was not promoted yet). */
  get readOnlyErrors(): number {
    return [...this.errors].filter(([message]) => /read-only|recovery/i.test(message)).reduce((sum, [, n]) => sum + n, 0);
  }

  private async writeOne(): Promise<void> {
    const id = this.nextId++;
    let sentAt = performance.now();
    try {
      if (!this.client) {
        const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1_000, query_timeout: 5_000 });
        client.on('error', () => undefined);
        this.client = client;
        await client.connect();
      }
      sentAt = performance.now();
      await this.client.query('INSERT INTO failover_rows (id, writer) VALUES ($1, $2)', [id, this.label]);
      this.acks.push({ id, sentAt, at: performance.now() });
    } catch (error) {
      this.uncertain.push(id);
      const message = (error as Error).message.replace(/\d+/g, 'N');
      this.errors.set(message, (this.errors.get(message) ?? 0) + 1);
      await this.client?.end().catch(() => undefined);
      this.client = null;
      await sleep(20);
    }
  }
}

function ourClusters(): string[] {
  const names = Object.values(clusterNames(NAME));
  const listed = JSON.parse(execFileSync('pg_lsclusters', ['--json'], { encoding: 'utf8' }) || '[]') as { cluster: string }[];
  return listed.map((c) => c.cluster).filter((c) => names.includes(c));
}

async function connects(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

let pair: ReplicatedPostgres | undefined;

beforeAll(async () => {
  pair = await startReplicatedPostgres({ name: NAME, ...PORTS });
}, 120_000);

afterAll(async () => {
  await pair?.stop();
}, 60_000);

describe('startReplicatedPostgres', () => {
  it('starts a primary with a synchronous streaming standby, and the proxy reaches the primary only', async () => {
    const db = pair!;
    expect(db.url).toBe(`postgres://postgres@127.0.0.1:${PORTS.proxyPort}/postgres`);
    expect(ourClusters().sort()).toEqual(Object.values(clusterNames(NAME)).sort());
    const [replica] = await query<{ state: string; sync_state: string }>(db.primaryUrl, 'SELECT state, sync_state FROM pg_stat_replication');
    expect(replica).toEqual({ state: 'streaming', sync_state: 'sync' });
    const [standby] = await query<{ recovering: boolean; prepared: string }>(db.standbyUrl, `SELECT pg_is_in_recovery() AS recovering, current_setting('max_prepared_transactions') AS prepared`);
    expect(standby).toEqual({ recovering: true, prepared: '64' });
    // The check tells the primary from the standby: the standby is down for the proxy, not only a backup.
    expect(Object.fromEntries(await proxyServerStatus(NAME))).toEqual({ primary: 'UP', standby: 'DOWN' });
    for (let i = 0; i < 10; i++) {
      const [server] = await query<{ port: number; recovering: boolean }>(db.url, 'SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovering');
      expect(server).toEqual({ port: PORTS.primaryPort, recovering: false });
    }
  });

  it('keeps every acknowledged commit across a kill of the primary and the standby\'s promotion', async () => {
    const db = pair!;
    await query(db.url, 'CREATE TABLE failover_rows (id bigint PRIMARY KEY, writer text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');

    const a = new Writer('a', 1, db.url, (w) => w.acks.length >= ROWS);
    const b = new Writer('b', 1_000_000, db.url, () => a.acks.length >= ROWS);
    a.start(60_000);
    b.start(60_000);

    const deadline = performance.now() + 20_000;
    while (a.acks.length < ROWS / 2 && performance.now() < deadline) await sleep(5);
    expect(a.acks.length).toBeGreaterThanOrEqual(ROWS / 2);
    // The acknowledgements received before the kill: an ack arriving later runs after this line.
    const ackedBeforeKill = [...a.acks, ...b.acks].map((ack) => ack.id);
    const killAt = performance.now();
    await db.killPrimary();
    // From here on no write can reach the old primary: its processes are gone.
    const deadAt = performance.now();
    await db.promoteStandby();
    const promotedAt = performance.now();
    expect(Object.fromEntries(await proxyServerStatus(NAME))).toEqual({ primary: 'MAINT', standby: 'UP' });

    await a.done;
    await b.stop();
    const acks = [...a.acks, ...b.acks];
    // The first write sent once the old primary was dead and acknowledged (by the new primary);
    // an acknowledgement received just after killAt may be of a commit the old primary made.
    const newPrimaryAcks = acks.filter((ack) => ack.sentAt > deadAt).sort((x, y) => x.at - y.at);
    const firstWriteAfterKillMs = newPrimaryAcks.length > 0 ? newPrimaryAcks[0].at - killAt : Number.POSITIVE_INFINITY;

    const present = new Set((await query<{ id: string }>(db.url, 'SELECT id FROM failover_rows')).map((row) => Number(row.id)));
    const lostBeforeKill = ackedBeforeKill.filter((id) => !present.has(id));
    const lost = acks.filter((ack) => !present.has(ack.id)).map((ack) => ack.id);
    const uncertain = [...a.uncertain, ...b.uncertain];
    const errors = new Map<string, number>();
    for (const [message, n] of [...a.errors, ...b.errors]) errors.set(message, (errors.get(message) ?? 0) + n);

    console.log(
      [
        `pg-failover figures: ${ackedBeforeKill.length} commits acknowledged before the kill (writer a ${a.acks.filter((x) => x.at <= killAt).length}, b ${b.acks.filter((x) => x.at <= killAt).length}), ${acks.length - ackedBeforeKill.length} after`,
        `  first write acknowledged through the proxy by the new primary ${Math.round(firstWriteAfterKillMs)} ms after the kill (killPrimary() took ${Math.round(deadAt - killAt)} ms, promoteStandby() returned ${Math.round(promotedAt - killAt)} ms after the kill)`,
        `  ${uncertain.length} writes failed (uncertain), ${uncertain.filter((id) => present.has(id)).length} of them committed all the same; ${present.size} rows on the new primary`,
        `  lost acknowledged commits: ${lost.length}; errors seen by the writers: ${[...errors].map(([m, n]) => `${n}x ${m}`).join('; ') || 'none'}`,
      ].join('\n'),
    );

    expect(a.acks.length).toBe(ROWS);
    expect(lostBeforeKill).toEqual([]);
    expect(lost).toEqual([]);
    // Nothing but attempted ids is there.
    const attempted = new Set([...acks.map((ack) => ack.id), ...uncertain]);
    expect([...present].filter((id) => !attempted.has(id))).toEqual([]);
    expect(firstWriteAfterKillMs).toBeLessThan(FAILOVER_BOUND_MS);
    expect(b.acks.some((ack) => ack.sentAt > deadAt)).toBe(true);
    // The proxy never sent a write to the standby before it was promoted.
    expect(a.readOnlyErrors + b.readOnlyErrors).toBe(0);

    // The proxy reaches the promoted standby; the old primary is gone.
    const [server] = await query<{ port: number; recovering: boolean }>(db.url, 'SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovering');
    expect(server).toEqual({ port: PORTS.standbyPort, recovering: false });
    expect(await connects(db.primaryUrl)).toBe(false);
    const [written] = await query<{ id: string }>(db.url, `INSERT INTO failover_rows (id, writer) VALUES (2000000, 'after') RETURNING id`);
    expect(written.id).toBe('2000000');
  }, 90_000);

  it('stop() drops both clusters and the proxy, and may be called again', async () => {
    const db = pair!;
    await db.stop();
    expect(ourClusters()).toEqual([]);
    expect(await connects(db.url)).toBe(false);
    expect(await connects(db.standbyUrl)).toBe(false);
    expect(existsSync(join(tmpdir(), `pg-failover-${NAME}`))).toBe(false);
    for (const cluster of Object.values(clusterNames(NAME))) expect(existsSync(`/var/lib/postgresql/15/${cluster}`)).toBe(false);
    await db.stop();
    // The Postgres the tests run on (not one of the pair's clusters) is untouched.
    expect(await connects(PG_ADMIN_URL)).toBe(true);
  }, 60_000);
});
