/**
 * The compiled `nest-dtx` command line against a real coordinator started with API keys: what
 * it prints for people and for scripts (--json), and the exit codes scripts rely on; `migrate`
 * on a fresh database and `start` as a process of its own.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODES, type ParticipantAdminView, type SecretRotationView, type TransactionCounts, type TransactionDetailView, type TransactionPage } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  ManagedProcess,
  ROOT,
  accountService,
  coordinator,
  freePort,
  generateApiKeys,
  getJson,
  openAccount,
  postJson,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
  type StackApiKeys,
} from '../../scripts/lib/stack.js';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/migrations/index.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { scriptedParticipant, type ScriptedAnswer, type ScriptedParticipant } from '../support/scripted-participant.js';

const CLI = resolve(ROOT, 'dist/apps/coordinator/src/cli/main.js');
// Phase-2 retries are a minute apart and one failed round needs attention, so only the
// operator's retry finishes the transaction left in phase 2.
const COORDINATOR_ENV = { RETRY_BASE_MS: '60000', RETRY_MAX_MS: '60000', ATTENTION_AFTER_ATTEMPTS: '1', CALL_TIMEOUT_MS: '1000', LEASE_MS: '3000' };

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;
let keys: StackApiKeys;
let client: TransactionClient;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI to its end, with the admin key and this coordinator unless `env` says otherwise. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const childEnv: Record<string, string> = {};
  const merged = { ...process.env, DTX_API_KEY: keys?.admin, DTX_COORDINATOR_URL: coord?.url, ...env };
  for (const [name, value] of Object.entries(merged)) if (value !== undefined) childEnv[name] = value;
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const debit = (amount: number) => ({ participant: 'bank', action: 'debit', payload: { accountId: 'cli', amount } });
const admin = <T>(path: string) => getJson<T>(`${coord.url}${path}`, keys.admin);
/** Data rows of a table: the lines after the header, split on the column gaps. */
const rows = (table: string) => table.trim().split('\n').slice(1).map((line) => line.split(/\s{2,}/));

beforeAll(async () => {
  keys = generateApiKeys();
  databases = await Promise.all(['cli_coord', 'cli_bank'].map((p) => createTestDatabase(p)));
  coord = await coordinator('cli-coordinator', databases[0].url, { ...COORDINATOR_ENV, API_KEYS: keys.API_KEYS });
  await coord.start();
  bank = await accountService('bank', databases[1].url, coord.url, 'http', keys.participant);
  await bank.start();
  await openAccount(bank, 'cli', 100_000);
  client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
  await client.begin({ mode: 'tcc', gid: 'cli-ok', wait: true, branches: [debit(10)] });
  await client.begin({ mode: 'tcc', gid: 'cli-refused', wait: true, branches: [debit(10_000_000)] });
  await client.begin({ mode: 'tcc', gid: 'cli-stuck', timeoutMs: 600_000 });
  await client.addBranch('cli-stuck', debit(20));
  // Committed while the bank is down: its confirm fails, so it stays committing and needs attention.
  await client.begin({ mode: 'tcc', gid: 'cli-attn', timeoutMs: 600_000 });
  await client.addBranch('cli-attn', debit(30));
  await bank.process.kill('SIGKILL');
  await client.commit('cli-attn');
  await until('cli-attn to need attention', async () => ((await client.get('cli-attn')).needsAttention ? true : undefined));
  await bank.start();
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('nest-dtx tx', () => {
  it('lists transactions newest first in an aligned table', async () => {
    const run = await cli(['tx', 'list']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const [header] = run.stdout.split('\n');
    expect(header.split(/\s{2,}/)).toEqual(['GID', 'MODE', 'STATUS', 'REASON', 'ATTENTION', 'BRANCHES', 'CREATED', 'UPDATED']);
    const listed = rows(run.stdout);
    expect(listed.map((r) => r[0])).toEqual(['cli-attn', 'cli-stuck', 'cli-refused', 'cli-ok']);
    expect(listed.find((r) => r[0] === 'cli-refused')?.slice(1, 6)).toEqual(['tcc', 'rolled_back', 'branch_failed', '-', '1']);
    expect(listed.find((r) => r[0] === 'cli-attn')?.slice(2, 5)).toEqual(['committing', '-', 'yes']);
    // Columns line up: every row's STATUS starts where the header's does.
    const at = header.indexOf('STATUS');
    for (const line of run.stdout.trim().split('\n').slice(1)) expect(line.slice(at).startsWith(' ')).toBe(false);
  });

  it('filters, pages with --cursor, and prints the API JSON unchanged with --json', async () => {
    expect(rows((await cli(['tx', 'list', '--attention'])).stdout).map((r) => r[0])).toEqual(['cli-attn']);
    expect(rows((await cli(['tx', 'list', '--status', 'rolled_back', '--mode', 'tcc', '--participant', 'bank'])).stdout).map((r) => r[0])).toEqual(['cli-refused']);
    const first = await cli(['tx', 'list', '--limit', '1']);
    const cursor = /more: --cursor (\S+)/.exec(first.stdout)?.[1];
    expect(cursor).toBeTruthy();
    const second = await cli(['tx', 'list', '--limit', '1', '--cursor', cursor!]);
    expect(second.stdout.split('\n')[1]).toMatch(/^cli-stuck /);
    const json = await cli(['tx', 'list', '--status', 'rolled_back', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await admin<TransactionPage>('/admin/transactions?status=rolled_back'));
  });

  it('shows a transaction with its branches and history', async () => {
    const run = await cli(['tx', 'show', 'cli-refused']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^gid: +cli-refused$/m);
    expect(run.stdout).toMatch(/^status: +rolled_back$/m);
    expect(run.stdout).toMatch(/^Branches:\nBRANCH +PARTICIPANT +ACTION +STATUS +CALLS\n\S+ +bank +debit +rolled_back +\d+\n {2}last error: \{.*insufficient funds/m);
    expect(run.stdout).toMatch(/^History:\nAT +EVENT /m);
    const json = await cli(['tx', 'show', 'cli-refused', '--json']);
    const detail = JSON.parse(json.stdout) as TransactionDetailView;
    expect(detail).toEqual(await admin<TransactionDetailView>('/admin/transactions/cli-refused'));
    expect(detail.events.length).toBeGreaterThan(2);
  });

  it('exits 3 for an unknown gid, with the error code on stderr', async () => {
    const run = await cli(['tx', 'show', 'cli-nobody']);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^nest-dtx: TX_NOT_FOUND: .+\n$/);
  });

  it('rolls back an active transaction, and exits 5 with the code when the transaction is decided', async () => {
    const run = await cli(['tx', 'rollback', 'cli-stuck']);
    expect(run).toMatchObject({ code: 0, stdout: 'cli-stuck: rollback requested; now rolling_back (reason admin)\n' });
    await until('cli-stuck rolled back', async () => ((await client.get('cli-stuck')).status === 'rolled_back' ? true : undefined));
    const refused = await cli(['tx', 'rollback', 'cli-ok']);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/^nest-dtx: TX_ALREADY_DECIDED: /);
  });

  it('retries phase 2 now, and exits 5 once there is nothing to retry', async () => {
    const run = await cli(['tx', 'retry', 'cli-attn', '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ gid: 'cli-attn' });
    await until('cli-attn committed after the retry', async () => ((await client.get('cli-attn')).status === 'committed' ? true : undefined), 10_000);
    const nothing = await cli(['tx', 'retry', 'cli-attn']);
    expect(nothing.code).toBe(5);
    expect(nothing.stderr).toMatch(/^nest-dtx: TX_NOT_ACTIVE: /);
  });
});

describe('nest-dtx stats', () => {
  it('counts by status and mode, or prints the JSON', async () => {
    const run = await cli(['stats']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^STATUS +COUNT$/m);
    expect(run.stdout).toMatch(/^committed +2$/m);
    expect(run.stdout).toMatch(/^total: +4$/m);
    expect(JSON.parse((await cli(['stats', '--json'])).stdout)).toEqual(await admin<TransactionCounts>('/admin/stats'));
  });
});

describe('nest-dtx participants', () => {
  it('lists the participants with their owner', async () => {
    const run = await cli(['participants']);
    expect(run.code).toBe(0);
    const [bankRow] = rows(run.stdout);
    expect(bankRow.slice(0, 2)).toEqual(['bank', 'http']);
    expect(bankRow[2]).toBe(`${bank.url}/tx`);
    expect(bankRow[4]).toMatch(/^key#\d+$/);
    expect(JSON.parse((await cli(['participants', 'list', '--json'])).stdout)).toEqual(await admin<ParticipantAdminView[]>('/admin/participants'));
  });

  it('rotates a secret, printing the new one', async () => {
    const run = await cli(['participants', 'rotate-secret', 'bank', '--overlap-seconds', '600']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^participant: +bank$/m);
    expect(run.stdout).toMatch(/^secret generation: +2$/m);
    expect(run.stdout).toMatch(/^signing secret: +whsec_\S+$/m);
    const json = JSON.parse((await cli(['participants', 'rotate-secret', 'bank', '--json'])).stdout) as SecretRotationView;
    expect(json.secretGeneration).toBe(3);
    expect(json.signingSecret).toMatch(/^whsec_/);
  });

  it('releases a name, and exits 3 for an unknown one', async () => {
    const run = await cli(['participants', 'release', 'bank']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^bank: released/);
    expect((await admin<ParticipantAdminView[]>('/admin/participants')).find((p) => p.name === 'bank')?.owner).toBeNull();
    const unknown = await cli(['participants', 'release', 'nobody']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/^nest-dtx: NOT_FOUND: /);
  });
});

describe('exit codes', () => {
  it('4 for a wrong key, a key without the admin role, and no key', async () => {
    const wrong = await cli(['tx', 'list'], { DTX_API_KEY: 'not-a-key-of-this-coordinator' });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/^nest-dtx: UNAUTHENTICATED: /);
    const client = await cli(['stats'], { DTX_API_KEY: keys.client });
    expect(client.code).toBe(4);
    expect(client.stderr).toMatch(/^nest-dtx: FORBIDDEN: /);
    const none = await cli(['stats'], { DTX_API_KEY: undefined });
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/\(DTX_API_KEY is unset\)\n$/);
  });

  it('6 when nothing answers at --url (which wins over DTX_COORDINATOR_URL)', async () => {
    const run = await cli(['stats', '--url', `http://127.0.0.1:${await freePort()}`]);
    expect(run.code).toBe(6);
    expect(run.stderr).toMatch(/^nest-dtx: UNREACHABLE: GET http:\/\/127\.0\.0\.1:\d+\/admin\/stats: connect ECONNREFUSED/);
  });

  it('2 for usage errors, which print nothing on stdout', async () => {
    for (const args of [['tx', 'frobnicate'], ['tx', 'show'], ['tx', 'list', '--bogus'], ['tx', 'list', '--limit', 'ten'], ['bogus'], []]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^nest-dtx: USAGE: .+\n$/);
    }
  });

  it('0 for --help and help <command>, which document the exit codes', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}4 {2}credentials refused/m);
    const show = await cli(['help', 'tx', 'show']);
    expect(show).toMatchObject({ code: 0 });
    expect(show.stdout).toMatch(/^Usage: nest-dtx tx show <gid>/);
    expect((await cli(['participants', 'rotate-secret', '--help'])).stdout).toContain('--overlap-seconds N');
  });

  it('0 for help tx and tx --help, which list the tx commands', async () => {
    for (const args of [['help', 'tx'], ['tx', '--help']]) {
      const run = await cli(args);
      expect(run, args.join(' ')).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toMatch(/^Usage: nest-dtx tx <command>/);
      for (const command of ['list', 'show', 'retry', 'rollback']) expect(run.stdout).toMatch(new RegExp(`^ {2}tx ${command} `, 'm'));
    }
  });

  it("tx list --help names every mode the coordinator takes, msg included", async () => {
    const run = await cli(['tx', 'list', '--help']);
    expect(run.code).toBe(0);
    const modes = /^ +--mode M +(.+)$/m.exec(run.stdout)?.[1] ?? '';
    expect(modes.split(/, | or /)).toEqual([...MODES]);
    expect(modes).toContain('msg');
  });
});

describe('errors longer than a line', () => {
  const LONG_REFUSAL = 'account cli-long is frozen by the compliance hold placed on 2026-11-30 (case AML-20931); ask the risk team to lift it before any debit';
  let participant: ScriptedParticipant;
  beforeAll(async () => {
    // Refuses the try with a message far past 80 characters; agrees to everything else (the cancel).
    participant = await scriptedParticipant((call): ScriptedAnswer => (call.phase === 'try' ? { status: 409, body: { message: LONG_REFUSAL } } : { status: 200, body: {} }));
    const registration = { name: 'cli-long', transport: 'http', endpoint: participant.endpoint, actions: [{ name: 'debit', modes: ['tcc'] }] };
    const registered = await postJson(`${coord.url}/v1/participants`, registration, keys.participant);
    expect(registered.status).toBe(201);
  });
  afterAll(async () => {
    await participant?.close();
  });

  it('tx show prints the whole error, under its branch and under its call, the columns staying narrow', async () => {
    const gid = 'cli-long-error';
    await client.begin({ mode: 'tcc', gid, wait: true, branches: [{ participant: 'cli-long', action: 'debit', payload: {} }] });
    const detail = await admin<TransactionDetailView>(`/admin/transactions/${gid}`);
    const error = JSON.stringify(detail.branches[0].lastError);
    expect(error).toContain(LONG_REFUSAL);
    expect(error.length).toBeGreaterThan(80);

    const run = await cli(['tx', 'show', gid]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Branches:\nBRANCH +PARTICIPANT +ACTION +STATUS +CALLS\n\S+ +cli-long +debit +\S+ +\d+\n {2}last error: (.+)$/m);
    const lines = run.stdout.split('\n');
    expect(lines).toContain(`  last error: ${error}`);
    // The failed try in the history: its row, then its error whole on the next line.
    const tryRow = lines.findIndex((line) => /^\S+ \S+ +call +\S+ .*"phase":"try"/.test(line));
    expect(tryRow).toBeGreaterThan(0);
    expect(lines[tryRow + 1]).toBe(`  error: ${error}`);
    // The text is in those two lines only, never in a cell that would widen a column.
    expect(lines.filter((line) => line.includes(LONG_REFUSAL))).toEqual([`  last error: ${error}`, `  error: ${error}`]);
  });
});

describe('nest-dtx migrate and start', () => {
  let fresh: TestDatabase;
  beforeAll(async () => {
    fresh = await createTestDatabase('cli_fresh');
  });
  afterAll(async () => {
    await fresh?.drop();
  });

  it('migrate applies every migration to a fresh database, then finds nothing pending', async () => {
    const run = await cli(['migrate'], { DATABASE_URL: fresh.url });
    expect(run.code).toBe(0);
    const names = COORDINATOR_MIGRATIONS.map((m) => new m().name);
    expect(run.stdout).toBe([...names.map((n) => `applied ${n}`), `${names.length} migration(s) applied`, ''].join('\n'));
    const db = new pg.Client({ connectionString: fresh.url });
    await db.connect();
    try {
      expect((await db.query<{ name: string }>('SELECT name FROM migrations ORDER BY id')).rows.map((r) => r.name)).toEqual(names);
    } finally {
      await db.end();
    }
    expect(await cli(['migrate'], { DATABASE_URL: fresh.url })).toMatchObject({ code: 0, stdout: 'no pending migrations: the schema is current\n' });
    const missing = await cli(['migrate'], { DATABASE_URL: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^nest-dtx: USAGE: migrate needs DATABASE_URL/);
  });

  it('start runs the coordinator from the environment (here on the database migrate prepared, MIGRATIONS_RUN=false)', async () => {
    const port = await freePort();
    const started = new ManagedProcess('cli-start', CLI, { PORT: String(port), DATABASE_URL: fresh.url, MIGRATIONS_RUN: 'false', INSTANCE_ID: 'cli-start' }, {
      program: process.execPath,
      args: [CLI, 'start'],
    });
    started.start();
    try {
      await started.untilReady('nest-dtx start to be ready', async () => {
        return (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok ? true : undefined;
      });
      const begun = await fetch(`http://127.0.0.1:${port}/v1/transactions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"tcc"}' });
      expect(begun.status).toBe(201);
    } finally {
      await started.kill();
    }
  });

  it('start exits 1 with one line when the configuration is bad', async () => {
    const run = await cli(['start'], { PORT: 'seventy', DATABASE_URL: fresh.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^nest-dtx: START_FAILED: invalid configuration: PORT: .+\n$/);
  });
});
