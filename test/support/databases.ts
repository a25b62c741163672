import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/**
 * Admin connection of the Postgres the tests use: TEST_DATABASE_URL, which the integration and
 * end-to-end tests' global set-up (test/support/global-setup.ts) sets to the run's own Postgres
 * unless it was set; the machine's only for the scripts run outside the tests (the benchmarks).
 */
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * The databases created here and not dropped yet, by engine and name: what a test file whose
 * set-up failed left behind, which the safety net (test/support/safety-net.ts) drops after it.
 */
const undropped = new Map<string, TestDatabase>();

function track(engine: 'postgres' | 'mariadb', database: TestDatabase): TestDatabase {
  const key = `${engine}:${database.name}`;
  undropped.set(key, database);
  return {
    ...database,
    async drop() {
      await database.drop();
      undropped.delete(key);
    },
  };
}

/** Drops every database created here and not dropped yet; resolves with their names, and what could not be dropped. */
export async function dropLeftoverDatabases(): Promise<{ dropped: string[]; failed: string[] }> {
  const left = [...undropped.entries()];
  const outcomes = await Promise.allSettled(left.map(([, database]) => database.drop()));
  const names = left.map(([key]) => key);
  const failed = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [`${names[i]} (${String(outcome.reason)})`] : []));
  for (const [key] of left) undropped.delete(key);
  return { dropped: names.filter((_, i) => outcomes[i].status === 'fulfilled'), failed };
}

export function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** SQLSTATE object_in_use: other sessions are connected to the database. */
const OBJECT_IN_USE = '55006';

/**
 * Rolls back the prepared transactions (2PC) left in a database: Postgres refuses to drop a
 * database that holds any, and a test stopped between prepare and commit leaves them.
 */
async function rollBackPrepared(admin: pg.Client, name: string): Promise<void> {
  const { rows } = await admin.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = $1', [name]);
  if (rows.length === 0) return;
  // ROLLBACK PREPARED works only in a session on the transaction's own database.
  const client = new pg.Client({ connectionString: databaseUrl(name) });
  await client.connect();
  try {
    for (const { gid } of rows) await client.query(`ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`);
  } finally {
    await client.end();
  }
}

/**
 * Drops a test database. Without FORCE first, for up to a second: a pool that has just ended
 * resolves before its connections are gone, and a backend terminated while its client is
 * closing makes that client emit an error nobody listens to any more (an uncaught exception in
 * the test run, seen on Node 24). What is still connected after that is forced out.
 */
async function dropDatabase(client: pg.Client, name: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}"`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== OBJECT_IN_USE) throw error;
      await sleep(20);
    }
  }
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/** Creates a fresh, uniquely named database, so tests never share state. */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`.toLowerCase();
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return track('postgres', {
    name,
    url: databaseUrl(name),
    async drop() {
      const client = new pg.Client({ connectionString: PG_ADMIN_URL });
      await client.connect();
      try {
        await rollBackPrepared(client, name);
        await dropDatabase(client, name);
      } finally {
        await client.end();
      }
    },
  });
}

/** Admin connection of the MariaDB (or MySQL) the tests use (the machine's, or TEST_MARIADB_URL). */
export const MARIADB_ADMIN_URL = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test';

export function mariadbUrl(name: string): string {
  const url = new URL(MARIADB_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh, uniquely named MariaDB database, dropped by `drop()`. */
export async function createMariaDbDatabase(prefix: string): Promise<TestDatabase> {
  const { default: mysql } = await import('mysql2/promise');
  const name = `${prefix}_${randomBytes(4).toString('hex')}`.toLowerCase();
  const admin = await mysql.createConnection(MARIADB_ADMIN_URL);
  try {
    await admin.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await admin.end();
  }
  return track('mariadb', {
    name,
    url: mariadbUrl(name),
    async drop() {
      const client = await mysql.createConnection(MARIADB_ADMIN_URL);
      try {
        await client.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await client.end();
      }
    },
  });
}
