/**
 * The safety net (test/support/safety-net.ts): a test file whose beforeAll started processes and
 * created databases and then threw, and whose afterAll then threw too, leaves nothing behind.
 * The file (test/fixtures/safety-net/failing-set-up.test.ts) runs in a Vitest of its own.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/stack.js';
import type { SafetyNetReport } from '../fixtures/safety-net/failing-set-up.test.js';
import { MARIADB_ADMIN_URL, PG_ADMIN_URL } from '../support/databases.js';

const reportFile = join(tmpdir(), `dtx-safety-net-${randomBytes(4).toString('hex')}.json`);
let report: SafetyNetReport | null = null;

function runFixture(): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/safety-net/vitest.config.ts'], {
      cwd: ROOT,
      env: { ...process.env, SAFETY_NET_REPORT: reportFile, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => done({ code, output }));
  });
}

/** Running (not gone, not a zombie waiting to be reaped). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

async function postgresHas(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

async function mariadbHas(name: string): Promise<boolean> {
  const { default: mysql } = await import('mysql2/promise');
  const client = await mysql.createConnection(MARIADB_ADMIN_URL);
  try {
    const [rows] = await client.query<import('mysql2').RowDataPacket[]>('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [name]);
    return rows.length === 1;
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  // Should the net have failed, what the fixture left is not left for the next run.
  for (const pid of report?.pids ?? []) if (running(pid)) process.kill(pid, 'SIGKILL');
  if (report && (await mariadbHas(report.mariadb))) {
    const { default: mysql } = await import('mysql2/promise');
    const client = await mysql.createConnection(MARIADB_ADMIN_URL);
    await client.query(`DROP DATABASE IF EXISTS \`${report.mariadb}\``).finally(() => client.end());
  }
  rmSync(reportFile, { force: true });
});

describe('the safety net', () => {
  it('stops the processes and drops the databases of a file whose beforeAll and afterAll failed', { timeout: 120_000 }, async () => {
    const { code, output } = await runFixture();
    expect(code, output).toBe(1);
    expect(output).toContain('the set-up failed half-way');
    expect(existsSync(reportFile), output).toBe(true);
    report = JSON.parse(readFileSync(reportFile, 'utf8')) as SafetyNetReport;
    const made = report;
    expect(made.pids.filter((pid) => pid > 0)).toHaveLength(2);
    expect(made.pids.filter(running), 'processes still running').toEqual([]);
    expect(await postgresHas(made.postgres), `${made.postgres} still there`).toBe(false);
    expect(await mariadbHas(made.mariadb), `${made.mariadb} still there`).toBe(false);
    // And it says what it found, for the file to be fixed.
    expect(output).toMatch(/safety net, after .*failing-set-up\.test\.ts: stopped safety-net-idler; stopped sleep 600; dropped postgres:safety_net_[0-9a-f]{8}, mariadb:safety_net_[0-9a-f]{8}/);
  });
});
