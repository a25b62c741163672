import pg from 'pg';
import { DataSource, MigrationExecutor, type DataSourceOptions, type Migration } from 'typeorm';
import { COORDINATOR_MIGRATIONS } from './migrations/index.js';

/**
 * The session-level advisory lock every coordinator takes to migrate: 'nest-dtx' in ASCII as a
 * 64-bit integer. Fixed, so replicas (and `nest-dtx migrate`) of any version exclude each other.
 */
export const MIGRATION_LOCK_KEY = BigInt('0x6e6573742d647478').toString();

export interface MigrationLog {
  /** Another process holds the lock: this one waits for it. */
  waiting(): void;
}

/**
 * Runs the pending migrations (each in its own transaction) while holding MIGRATION_LOCK_KEY on
 * a connection of its own, so replicas starting together on an empty database migrate one at a
 * time: the first applies them, the others then find nothing pending. TypeORM takes no lock.
 * The lock is released, and its connection closed, whatever happens.
 */
export async function runMigrationsLocked(dataSource: DataSource, log?: MigrationLog): Promise<Migration[]> {
  const lock = new pg.Client(connectionConfig(dataSource.options));
  // The server going away while this session idles (Postgres restarting mid-start) is emitted as
  // an event, which unheard would end the process: the queries below fail with it instead.
  lock.on('error', () => undefined);
  await lock.connect();
  try {
    const tried = await lock.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [MIGRATION_LOCK_KEY]);
    if (!tried.rows[0].locked) {
      log?.waiting();
      await lock.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    }
    try {
      return await dataSource.runMigrations({ transaction: 'each' });
    } finally {
      // A failed unlock must not hide the migrations' own error: ending the session below
      // releases the lock as well.
      await lock.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await lock.end().catch(() => undefined);
  }
}

/** Migrates the database at `url` with a small pool of its own (start-up and `nest-dtx migrate`). */
export async function migrateDatabase(url: string, log?: MigrationLog): Promise<Migration[]> {
  return withMigrationSource(url, (dataSource) => runMigrationsLocked(dataSource, log));
}

/** Names of the migrations the database at `url` has not run yet (read only). */
export async function pendingMigrations(url: string): Promise<string[]> {
  return withMigrationSource(url, async (dataSource) => {
    const pending = await new MigrationExecutor(dataSource).getPendingMigrations();
    return pending.map((migration) => migration.name);
  });
}

async function withMigrationSource<T>(url: string, work: (dataSource: DataSource) => Promise<T>): Promise<T> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    migrations: COORDINATOR_MIGRATIONS,
    migrationsTransactionMode: 'each',
    extra: { max: 2, application_name: 'dtx-coordinator migrations' },
  });
  await dataSource.initialize();
  try {
    return await work(dataSource);
  } finally {
    await dataSource.destroy();
  }
}

/** The pg connection settings of a TypeORM Postgres data source. */
function connectionConfig(options: DataSourceOptions): pg.ClientConfig {
  if (options.type !== 'postgres') throw new Error(`migrations need a Postgres data source, not ${options.type}`);
  const base: pg.ClientConfig = { application_name: 'dtx-coordinator migration lock' };
  if (options.url) return { ...base, connectionString: options.url };
  return { ...base, host: options.host, port: options.port, user: options.username, password: options.password, database: options.database };
}
