/**
 * runMigrationsLocked against a real Postgres: it waits while another session holds the
 * migration lock, and it gives the lock back (and closes its connection) when a migration fails.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataSource, MigrationExecutor, type MigrationInterface, type QueryRunner } from 'typeorm';
import { MIGRATION_LOCK_KEY, pendingMigrations, runMigrationsLocked } from '../../apps/coordinator/src/database/migrate.js';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/migrations/index.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

class Broken1999999999999 implements MigrationInterface {
  name = 'Broken1999999999999';
  async up(runner: QueryRunner): Promise<void> {
    await runner.query('SELECT * FROM no_such_table');
  }
  async down(): Promise<void> {}
}

let db: TestDatabase;
let other: pg.Client;
const sources: DataSource[] = [];

async function dataSource(migrations: (new () => MigrationInterface)[]): Promise<DataSource> {
  const source = new DataSource({ type: 'postgres', url: db.url, migrations, migrationsTransactionMode: 'each', extra: { max: 2 } });
  sources.push(source);
  return source.initialize();
}

/** Sessions of this database that are the lock's own connection (a closed one may take a moment to leave). */
async function lockConnections(): Promise<number> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const { rows } = await other.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'dtx-coordinator migration lock'",
    );
    if (rows[0].n === 0 || Date.now() > deadline) return rows[0].n;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  db = await createTestDatabase('migration_lock');
  other = new pg.Client({ connectionString: db.url });
  await other.connect();
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.destroy()));
});

afterAll(async () => {
  await other?.end();
  await db?.drop();
});

describe('runMigrationsLocked', () => {
  it('waits for the lock another session holds, then migrates', async () => {
    await other.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    let waited = false;
    const migrating = runMigrationsLocked(await dataSource(COORDINATOR_MIGRATIONS), { waiting: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 500));
    expect(waited).toBe(true);
    expect(await pendingMigrations(db.url)).toHaveLength(COORDINATOR_MIGRATIONS.length);
    await other.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
    expect((await migrating).map((m) => m.name)).toEqual(COORDINATOR_MIGRATIONS.map((m) => new m().name));
    expect(await pendingMigrations(db.url)).toEqual([]);
    expect(await lockConnections()).toBe(0);
  });

  it('unlocks and closes its connection when a migration fails, leaving the failed one pending', async () => {
    const source = await dataSource([...COORDINATOR_MIGRATIONS, Broken1999999999999]);
    await expect(runMigrationsLocked(source)).rejects.toThrow(/no_such_table/);
    const { rows } = await other.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [MIGRATION_LOCK_KEY]);
    expect(rows[0].locked).toBe(true);
    await other.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
    expect(await lockConnections()).toBe(0);
    expect(await new MigrationExecutor(source).getPendingMigrations()).toHaveLength(1);
  });
});
