/**
 * A coordinator and its Postgres going away, on a Postgres cluster of this test's own (never the
 * machine's on 5432): `pg_createcluster 15 dtxstart --port 5491`, started and stopped with
 * pg_ctlcluster, dropped at the end (and first, if an earlier run left it behind).
 * - started while Postgres is down, the coordinator waits (alive, not listening, so not ready),
 *   says so in one warn line and no error line, and serves once Postgres is up;
 * - Postgres stopped under it (`-m fast`) and started again: one warn line for the outage, one
 *   "reachable again after" line with its duration, no error line, and it commits afterwards;
 * - with a short DATABASE_CONNECT_TIMEOUT_MS it gives up, exiting 1 with one clear line.
 * Needs root and postgresql-common's pg_createcluster (Debian/Ubuntu); skipped, saying so, without.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { TransactionClient } from '@nest-dtx/sdk';
import { coordinator, postJson, sleep, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';

const VERSION = '15';
const CLUSTER = 'dtxstart';
const PORT = 5491;
const DATABASE_URL = `postgres://postgres@127.0.0.1:${PORT}/coordinator`;

const canCreateClusters =
  process.getuid?.() === 0 && spawnSync('which', ['pg_createcluster', 'pg_ctlcluster', 'pg_dropcluster']).status === 0 && existsSync(`/usr/lib/postgresql/${VERSION}/bin/postgres`);
const SKIP_REASON = `SKIPPED: needs root and pg_createcluster with Postgres ${VERSION}, to run a Postgres of its own on port ${PORT}`;
if (!canCreateClusters) process.stderr.write(`database-outage: ${SKIP_REASON}\n`);

function run(program: string, args: string[]): string {
  const result = spawnSync(program, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** pg_ctlcluster on this test's cluster only, bypassing systemd (there may be none). */
const cluster = (action: 'start' | 'stop', ...options: string[]): string =>
  run('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, CLUSTER, action, ...options]);

const clusterExists = (): boolean => existsSync(`/etc/postgresql/${VERSION}/${CLUSTER}`);

function dropCluster(): void {
  if (clusterExists()) run('pg_dropcluster', ['--stop', VERSION, CLUSTER]);
}

interface LogLine {
  level: string;
  msg: string;
  context?: string;
  dependency?: string;
  downMs?: number;
}

/** The JSON lines a process wrote to its log since `from` (a byte offset: the file is appended to across runs). */
function linesSince(handle: CoordinatorHandle, from: number): LogLine[] {
  return readFileSync(handle.process.logFile)
    .subarray(from)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

const logSize = (handle: CoordinatorHandle): number => (existsSync(handle.process.logFile) ? statSync(handle.process.logFile).size : 0);

/** Status of one HTTP GET, or null when nothing listens. */
async function statusOf(url: string): Promise<number | null> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return null;
  }
}

/** Begins and commits a TCC transaction without branches; resolves with its final status. */
async function commitOne(handle: CoordinatorHandle, gid: string): Promise<string> {
  const begun = await postJson<{ status: string }>(`${handle.url}/v1/transactions`, { mode: 'tcc', gid });
  expect(begun.status).toBe(201);
  return (await new TransactionClient({ coordinatorUrl: handle.url }).commit(gid, { wait: true })).status;
}

const outageWarnings = (lines: LogLine[]): LogLine[] => lines.filter((line) => line.level === 'warn' && /^postgres unreachable: /.test(line.msg));
const reachableAgain = (lines: LogLine[]): LogLine[] => lines.filter((line) => /^postgres reachable again after \d+\.\d s \(\d+ failures?\)$/.test(line.msg));
const errorLines = (lines: LogLine[]): LogLine[] => lines.filter((line) => line.level === 'error' || line.level === 'fatal');

let coord: CoordinatorHandle | undefined;
let giveUp: CoordinatorHandle | undefined;
const run_ = Date.now().toString(36);

beforeAll(() => {
  if (!canCreateClusters) return;
  // An earlier run killed before its afterAll leaves the cluster (perhaps running): start afresh.
  // It listens on localhost only (the default), with trust authentication.
  dropCluster();
  run('pg_createcluster', [VERSION, CLUSTER, '--port', String(PORT), '--start-conf', 'manual', '--', '--auth=trust']);
  cluster('start');
  const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${PORT}/postgres` });
  return admin
    .connect()
    .then(() => admin.query('CREATE DATABASE coordinator'))
    .finally(() => admin.end())
    .then(() => {
      // The coordinator is started against it stopped.
      cluster('stop', '-m', 'fast');
    });
});

afterAll(async () => {
  await Promise.all([coord?.process.kill(), giveUp?.process.kill()]);
  if (canCreateClusters) dropCluster();
});

describe.skipIf(!canCreateClusters)(canCreateClusters ? 'the coordinator and an unreachable Postgres' : `database outage: ${SKIP_REASON}`, () => {
  it('started while Postgres is down, it waits (alive, not listening), warns once, and serves once Postgres is up', async () => {
    coord = await coordinator(`db-outage-${run_}`, DATABASE_URL);
    const from = logSize(coord);
    coord.process.start();
    // Until it says it waits (a second or two; more on a loaded machine, where a fixed 4 s was
    // too short), then two seconds more, over which it must not warn again.
    const saidBy = Date.now() + 30_000;
    const warned = (handle: NonNullable<typeof coord>) => existsSync(handle.process.logFile) && outageWarnings(linesSince(handle, from)).length > 0;
    while (!warned(coord) && Date.now() < saidBy) await sleep(200);
    await sleep(2_000);
    expect(coord.process.alive).toBe(true);
    // Not listening while it waits: neither live nor ready (the startupProbe allows for this).
    expect(await statusOf(`${coord.url}/health/ready`)).toBeNull();
    expect(await statusOf(`${coord.url}/health/live`)).toBeNull();
    const waiting = linesSince(coord, from);
    expect(outageWarnings(waiting)).toHaveLength(1);
    expect(outageWarnings(waiting)[0].msg).toMatch(/ECONNREFUSED 127\.0\.0\.1:5491/);
    expect(waiting.filter((line) => line.level === 'warn')).toHaveLength(1);
    expect(errorLines(waiting)).toEqual([]);

    cluster('start');
    const handle = coord;
    await until('the coordinator to be ready', async () => ((await statusOf(`${handle.url}/health/ready`)) === 200 ? true : undefined), 30_000, 200);
    expect(await commitOne(coord, `db-outage-start-${run_}`)).toBe('committed');

    const lines = linesSince(coord, from);
    expect(outageWarnings(lines)).toHaveLength(1);
    expect(reachableAgain(lines)).toHaveLength(1);
    expect(errorLines(lines)).toEqual([]);
  });

  it('logs Postgres stopped mid-run as one outage: one warn line, one line with how long it lasted, no error line', async () => {
    const handle = coord!;
    const from = logSize(handle);
    cluster('stop', '-m', 'fast');
    // Probes, requests and recovery's claims (every second) all fail for a few seconds.
    for (let i = 0; i < 4; i++) {
      expect(await statusOf(`${handle.url}/health/ready`)).toBe(503);
      const begin = await postJson<{ error: string }>(`${handle.url}/v1/transactions`, { mode: 'tcc' });
      expect([begin.status, begin.body.error]).toEqual([503, 'STORE_UNAVAILABLE']);
      await sleep(1_000);
    }
    expect(outageWarnings(linesSince(handle, from))).toHaveLength(1);
    cluster('start');
    await until('the coordinator to be ready again', async () => ((await statusOf(`${handle.url}/health/ready`)) === 200 ? true : undefined), 30_000, 200);
    expect(await commitOne(handle, `db-outage-after-${run_}`)).toBe('committed');

    const lines = linesSince(handle, from);
    expect(outageWarnings(lines)).toHaveLength(1);
    const back = reachableAgain(lines);
    expect(back).toHaveLength(1);
    expect(back[0].level).toBe('info');
    // About as long as Postgres was down: the four rounds above, and its restart.
    expect(back[0].downMs).toBeGreaterThan(3_000);
    expect(back[0].downMs).toBeLessThan(60_000);
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
    expect(errorLines(lines)).toEqual([]);
  });

  it('gives up after a short DATABASE_CONNECT_TIMEOUT_MS, exiting 1 with one clear line', async () => {
    cluster('stop', '-m', 'fast');
    giveUp = await coordinator(`db-outage-give-up-${run_}`, DATABASE_URL, { DATABASE_CONNECT_TIMEOUT_MS: '2000' });
    const from = logSize(giveUp);
    const started = performance.now();
    giveUp.process.start();
    expect(await giveUp.process.waitExit()).toBe(1);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThan(2_000);
    expect(elapsed).toBeLessThan(15_000);
    const output = readFileSync(giveUp.process.logFile).subarray(from).toString('utf8');
    expect(output).toMatch(
      /^coordinator failed to start: Postgres at 127\.0\.0\.1:5491\/coordinator is unreachable \(waited 2\.\d s, \d+ attempts; DATABASE_CONNECT_TIMEOUT_MS is 2000\): connect ECONNREFUSED 127\.0\.0\.1:5491$/m,
    );
    expect(output).not.toContain(':postgres@'); // the URL's credentials stay out of it
  });
});
