/**
 * The locks AT transactions hold, as operators see them: GET /admin/transactions/{gid} shows
 * each AT branch's locked rows and how long they were held, GET /admin/locks lists the ones held
 * now, and the CLI's `locks` command prints them. A real coordinator and two real account
 * services (AT actions at-debit / at-credit on `accounts`), each on its own database.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BranchDetailView, BranchOutcomeView, HeldLocksPage, TransactionDetailView, TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  ROOT,
  accountService,
  accountsOf,
  coordinator,
  finished,
  getJson,
  openAccount,
  postJson,
  type CoordinatorHandle,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bankA: ServiceHandle;
let bankB: ServiceHandle;
let client: TransactionClient;

/** Long enough that no interactive transaction here reaches its deadline while the test looks at it. */
const LONG_TIMEOUT_MS = 600_000;

/** The row the account service's AT actions lock: its `accounts` table, keyed by id (a JSON array of the key's values). */
const accountRow = (id: string) => ({ table: 'public.accounts', key: JSON.stringify([id]) });

const atDebit = (accountId: string, amount: number) => ({ participant: 'bank-a', action: 'at-debit', payload: { accountId, amount } });
const atCredit = (accountId: string, amount: number) => ({ participant: 'bank-b', action: 'at-credit', payload: { accountId, amount } });

const detail = (gid: string) => getJson<TransactionDetailView>(`${coord.url}/admin/transactions/${gid}`);
const heldLocks = (query = '') => getJson<HeldLocksPage>(`${coord.url}/admin/locks${query ? `?${query}` : ''}`);
const branchOf = (view: TransactionDetailView, branchId: string): BranchDetailView => {
  const branch = view.branches.find((b) => b.branchId === branchId);
  if (!branch) throw new Error(`${view.gid} has no branch ${branchId}`);
  return branch;
};

/** Begins an interactive 2PC transaction and adds its branches one by one (each runs its prepare). */
async function interactiveTransfer(gid: string, branches: { branchId: string; participant: string; action: string; payload: object }[]): Promise<void> {
  const begun = await postJson<TransactionView>(`${coord.url}/v1/transactions`, { mode: '2pc', gid, timeoutMs: LONG_TIMEOUT_MS });
  expect(begun.status).toBe(201);
  for (const branch of branches) {
    const added = await postJson<BranchOutcomeView>(`${coord.url}/v1/transactions/${gid}/branches`, branch);
    expect(added).toMatchObject({ status: 201, body: { branchId: branch.branchId, status: 'prepared' } });
  }
}

const CLI = resolve(ROOT, 'dist/apps/coordinator/src/cli/main.js');

/** Runs the compiled CLI to its end against the coordinator. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args, '--url', coord.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  databases = await Promise.all(['at_admin_coord', 'at_admin_bank_a', 'at_admin_bank_b'].map((p) => createTestDatabase(p)));
  coord = await coordinator('at-admin-coordinator', databases[0].url);
  await coord.start();
  bankA = await accountService('bank-a', databases[1].url, coord.url);
  bankB = await accountService('bank-b', databases[2].url, coord.url);
  await Promise.all([bankA.start(), bankB.start()]);
  await Promise.all([openAccount(bankA, 'ann', 100_000), openAccount(bankA, 'amy', 100_000), openAccount(bankB, 'ben', 0), openAccount(bankB, 'bea', 0)]);
  client = new TransactionClient({ coordinatorUrl: coord.url });
});

afterAll(async () => {
  await Promise.all([bankA?.process.kill(), bankB?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('an interactive AT transfer', () => {
  const gid = 'at-adm-transfer';

  beforeAll(async () => {
    await interactiveTransfer(gid, [
      { branchId: 'debit', ...atDebit('ann', 1_500) },
      { branchId: 'credit', ...atCredit('ben', 1_500) },
    ]);
  });

  it('shows, per branch, the rows its prepare locked, since when, held so far and not released', async () => {
    const view = await detail(gid);
    expect(view.status).toBe('active');
    const debit = branchOf(view, 'debit');
    const credit = branchOf(view, 'credit');
    expect(debit.locks).toMatchObject({ count: 1, rows: [accountRow('ann')], releasedAt: null });
    expect(credit.locks).toMatchObject({ count: 1, rows: [accountRow('ben')], releasedAt: null });
    for (const locks of [debit.locks!, credit.locks!]) {
      expect(Number.isNaN(Date.parse(locks.since))).toBe(false);
      expect(locks.heldMs).toBeGreaterThan(0);
    }
    // The debit's prepare answered first.
    expect(Date.parse(debit.locks!.since)).toBeLessThanOrEqual(Date.parse(credit.locks!.since));
    // The view fields of PROTOCOL.md 3.4 are all there, unchanged, with waitingSince (3.6): no kind, which only a workflow's steps have.
    expect(Object.keys(debit).sort()).toEqual(['action', 'attempts', 'branchId', 'lastError', 'locks', 'participant', 'result', 'status', 'waitingSince']);
    expect(debit.waitingSince).toBeNull();
  });

  it('is listed by GET /admin/locks, oldest first, filtered by participant and paged by cursor', async () => {
    const page = await heldLocks();
    const ours = page.items.filter((item) => item.gid === gid);
    expect(ours.map((item) => item.branchId)).toEqual(['debit', 'credit']);
    expect(ours[0]).toMatchObject({ participant: 'bank-a', action: 'at-debit', transactionStatus: 'active', count: 1, rows: [accountRow('ann')] });
    expect(ours[0].heldMs).toBeGreaterThan(0);
    const since = page.items.map((item) => Date.parse(item.since));
    expect(since).toEqual([...since].sort((a, b) => a - b));

    const onBankB = await heldLocks('participant=bank-b');
    expect(onBankB.items.map((item) => [item.gid, item.branchId])).toEqual([[gid, 'credit']]);

    const first = await heldLocks('limit=1');
    expect(first.items).toHaveLength(1);
    expect(first.nextCursor).not.toBeNull();
    const second = await heldLocks(`limit=1&cursor=${first.nextCursor}`);
    expect(second.items).toHaveLength(1);
    expect(second.nextCursor).toBeNull();
    expect([...first.items, ...second.items].map((item) => item.branchId)).toEqual(['debit', 'credit']);
  });

  it('is printed by `nest-dtx locks`', async () => {
    const shown = await cli('locks');
    expect(shown).toMatchObject({ code: 0, stderr: '' });
    const lines = shown.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^GID\s+BRANCH\s+PARTICIPANT\s+ACTION\s+TX STATUS\s+LOCKS\s+HELD\s+SINCE\s+ROWS$/);
    expect(lines.find((line) => line.includes('debit') && line.includes('bank-a'))).toContain('public.accounts ["ann"]');
    const json = await cli('locks', '--participant', 'bank-b', '--json');
    expect((JSON.parse(json.stdout) as HeldLocksPage).items.map((item) => item.branchId)).toEqual(['credit']);
  });

  it('once committed, shows when the locks were released and for how long they were held, and lists them no more', async () => {
    const committed = await postJson<TransactionView>(`${coord.url}/v1/transactions/${gid}/commit`, { wait: true });
    expect(committed).toMatchObject({ status: 200, body: { status: 'committed' } });
    await finished(client, gid);

    const view = await detail(gid);
    for (const branchId of ['debit', 'credit']) {
      const { locks } = branchOf(view, branchId);
      expect(locks?.releasedAt).toEqual(expect.any(String));
      expect(Date.parse(locks!.releasedAt!)).toBeGreaterThanOrEqual(Date.parse(locks!.since));
      expect(locks!.heldMs).toBe(Date.parse(locks!.releasedAt!) - Date.parse(locks!.since));
    }
    expect((await heldLocks()).items.filter((item) => item.gid === gid)).toEqual([]);
    expect((await accountsOf(bankA)).accounts.find((a) => a.id === 'ann')?.balance).toBe(100_000 - 1_500);
  });
});

describe('other transactions', () => {
  it('a rolled back AT transfer released its locks at the rollback', async () => {
    const gid = 'at-adm-rolled-back';
    await interactiveTransfer(gid, [{ branchId: 'debit', ...atDebit('amy', 700) }]);
    expect((await heldLocks()).items.filter((item) => item.gid === gid).map((item) => item.branchId)).toEqual(['debit']);

    const rolledBack = await postJson<TransactionView>(`${coord.url}/v1/transactions/${gid}/rollback`, { wait: true });
    expect(rolledBack).toMatchObject({ status: 200, body: { status: 'rolled_back' } });
    const { locks } = branchOf(await detail(gid), 'debit');
    expect(locks).toMatchObject({ count: 1, rows: [accountRow('amy')], releasedAt: expect.any(String) });
    expect((await heldLocks()).items.filter((item) => item.gid === gid)).toEqual([]);
  });

  it('a one-shot AT transfer records its locks with the decision, released once it finished', async () => {
    const gid = 'at-adm-one-shot';
    const done = await client.begin({ mode: '2pc', gid, wait: true, branches: [atDebit('amy', 300), atCredit('bea', 300)] });
    expect(done.status).toBe('committed');
    const view = await detail(gid);
    expect(view.branches.map((b) => b.locks?.rows)).toEqual([[accountRow('amy')], [accountRow('bea')]]);
    for (const branch of view.branches) expect(branch.locks?.releasedAt).toEqual(expect.any(String));
    expect((await heldLocks()).items.filter((item) => item.gid === gid)).toEqual([]);
  });

  it("a TCC transaction's branches have no locks", async () => {
    const gid = 'at-adm-tcc';
    const done = await client.begin({
      mode: 'tcc',
      gid,
      wait: true,
      branches: [
        { participant: 'bank-a', action: 'debit', payload: { accountId: 'amy', amount: 100 } },
        { participant: 'bank-b', action: 'credit', payload: { accountId: 'bea', amount: 100 } },
      ],
    });
    expect(done.status).toBe('committed');
    const view = await detail(gid);
    expect(view.branches).toHaveLength(2);
    for (const branch of view.branches) expect(branch).not.toHaveProperty('locks');
  });
});

describe('GET /admin/locks input', () => {
  it('refuses bad query parameters with 400 VALIDATION_FAILED naming the field', async () => {
    const forged = Buffer.from('not a position', 'utf8').toString('base64url');
    for (const [query, field] of [
      ['participant=no%20spaces', 'participant'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=many', 'limit'],
      ['cursor=!!', 'cursor'],
      [`cursor=${forged}`, 'cursor'],
      ['status=active', 'status'],
    ]) {
      const response = await fetch(`${coord.url}/admin/locks?${query}`);
      expect({ query, status: response.status }).toEqual({ query, status: 400 });
      expect(await response.json()).toMatchObject({ error: 'VALIDATION_FAILED', field });
    }
  });

  it('is in the OpenAPI document, with the locks of the detail view', async () => {
    const document = await getJson<{ paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, { properties?: Record<string, unknown> }> } }>(
      `${coord.url}/docs-json`,
    );
    expect(Object.keys(document.paths['/admin/locks'] ?? {})).toEqual(['get']);
    expect(Object.keys(document.components.schemas.HeldLockView.properties ?? {}).sort()).toEqual(
      ['action', 'branchId', 'count', 'gid', 'heldMs', 'participant', 'rows', 'since', 'transactionStatus'].sort(),
    );
    expect(Object.keys(document.components.schemas.BranchDetailView.properties ?? {})).toContain('locks');
    expect(Object.keys(document.components.schemas.BranchLocksView.properties ?? {}).sort()).toEqual(['count', 'heldMs', 'releasedAt', 'rows', 'since']);
  });
});
