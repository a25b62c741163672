/**
 * Replicas starting together on an empty database: each migrates under the advisory lock
 * (database/migrate.ts), so every migration runs exactly once and every replica comes up.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/migrations/index.js';
import { coordinator, postJson, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startingGate, type StartingGate } from '../support/starting-gate.js';

const REPLICAS = 4;
let database: TestDatabase;
let replicas: CoordinatorHandle[] = [];
let gate: StartingGate;

beforeAll(async () => {
  database = await createTestDatabase('migrate_race');
  // The replicas reach Postgres through a gate that lets their first connections through
  // together: on two slow cores their boot times differ by more than the migrations take.
  const direct = new URL(database.url);
  gate = await startingGate({ host: direct.hostname, port: Number(direct.port || 5432) }, REPLICAS);
  const gated = new URL(database.url);
  gated.port = String(gate.port);
  replicas = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => coordinator(`migrate-race-${i}`, gated.toString())));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.process.kill()));
  await gate?.close();
  await database?.drop();
});

/** Resolves once the replica is ready; rejects as soon as it exits (a lost race fails its start). */
async function ready(replica: CoordinatorHandle): Promise<void> {
  let exitCode: number | null | undefined;
  void replica.process.waitExit().then((code) => (exitCode = code));
  await until(`${replica.process.name} to be ready`, async () => {
    if (exitCode !== undefined) return `exited with ${exitCode}; see ${replica.process.logFile}`;
    return (await fetch(`${replica.url}/health/ready`)).ok ? 'ready' : undefined;
  }).then((outcome) => {
    if (outcome !== 'ready') throw new Error(`${replica.process.name} ${outcome}`);
  });
}

describe('start-up migrations', () => {
  it(`${REPLICAS} coordinators started at the same instant on an empty database all become ready`, async () => {
    // Spawned in one tick; the gate lines up their first statements.
    for (const replica of replicas) replica.process.start();
    await Promise.all(replicas.map(ready));
    await gate.opened;
  });

  it('ran each migration exactly once', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string; runs: number }>('SELECT name, count(*)::int AS runs FROM migrations GROUP BY name ORDER BY name');
      const expected = COORDINATOR_MIGRATIONS.map((migration) => ({ name: new migration().name, runs: 1 }));
      expect(rows).toEqual(expected.sort((a, b) => a.name.localeCompare(b.name)));
    } finally {
      await client.end();
    }
  });

  it('begins a transaction on every replica', async () => {
    for (const [i, replica] of replicas.entries()) {
      const { status, body } = await postJson<{ gid: string; status: string }>(`${replica.url}/v1/transactions`, { mode: 'tcc', gid: `race-${i}` });
      expect(status).toBe(201);
      expect(body).toMatchObject({ gid: `race-${i}`, status: 'active' });
    }
  });

  it('with MIGRATIONS_RUN=false, refuses to start on a database with pending migrations, and starts on a migrated one', async () => {
    const empty = await createTestDatabase('migrate_off');
    try {
      const refused = await coordinator('migrations-off-empty', empty.url, { MIGRATIONS_RUN: 'false' });
      refused.process.start();
      expect(await refused.process.waitExit()).toBe(1);
      expect(readFileSync(refused.process.logFile, 'utf8')).toMatch(
        new RegExp(`MIGRATIONS_RUN is false and ${COORDINATOR_MIGRATIONS.length} migration\\(s\\) are pending \\(InitialSchema1763800000000, .*\\): run nest-dtx migrate first`),
      );
    } finally {
      await empty.drop();
    }
    const migrated = await coordinator('migrations-off-migrated', database.url, { MIGRATIONS_RUN: 'false' });
    try {
      await migrated.start();
      await ready(migrated);
    } finally {
      await migrated.process.kill();
    }
  });
});
