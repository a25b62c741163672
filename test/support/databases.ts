import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** Admin connection of the Postgres the tests use (the machine's, or TEST_DATABASE_URL). */
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** SQLSTATE object_in_use: other sessions are connected to the database. */
const OBJECT_IN_USE = '55006';

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
  return {
    name,
    url: databaseUrl(name),
    async drop() {
      const client = new pg.Client({ connectionString: PG_ADMIN_URL });
      await client.connect();
      try {
        await dropDatabase(client, name);
      } finally {
        await client.end();
      }
    },
  };
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
  return {
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
  };
}
