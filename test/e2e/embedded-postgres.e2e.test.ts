/** `npm start` without DATABASE_URL: the coordinator runs on its own embedded Postgres. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TransactionClient } from '@nest-dtx/sdk';
import { ManagedProcess, ROOT, freePort, until } from '../../scripts/lib/stack.js';

const dataDir = mkdtempSync(join(tmpdir(), 'dtx-embedded-'));
// Postgres refuses to run as root: as root, the folder must be one the postgres user can enter.
execFileSync('chmod', ['755', dataDir]);

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const postgresRunningIn = (dir: string): boolean => {
  try {
    return execFileSync('ps', ['-eo', 'args']).toString().split('\n').some((line) => line.includes(`-D ${dir}`));
  } catch {
    return false;
  }
};

describe('embedded Postgres', () => {
  it('starts one in EMBEDDED_PG_DIR when DATABASE_URL is unset, runs transactions on it, and stops it on shutdown', async () => {
    const port = await freePort();
    const pgDir = join(dataDir, 'pg');
    const coordinatorProcess = new ManagedProcess('embedded-coordinator', join(ROOT, 'dist/apps/coordinator/src/main.js'), {
      PORT: String(port),
      EMBEDDED_PG_DIR: pgDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      DATABASE_URL: '',
    });
    coordinatorProcess.start();
    const url = `http://127.0.0.1:${port}`;
    try {
      await until('the coordinator on embedded Postgres', async () => ((await fetch(`${url}/health/ready`)).ok ? true : undefined), 90_000, 250);
      expect(postgresRunningIn(pgDir)).toBe(true);
      const client = new TransactionClient({ coordinatorUrl: url });
      await client.begin({ mode: 'tcc', gid: 'embedded-1' });
      expect((await client.commit('embedded-1', { wait: true })).status).toBe('committed');
    } finally {
      await coordinatorProcess.kill('SIGTERM');
    }
    await until('the embedded Postgres to stop', () => Promise.resolve(postgresRunningIn(pgDir) ? undefined : true), 20_000, 200);
  });
});
