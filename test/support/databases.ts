import { randomBytes } from 'node:crypto';
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
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
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
