/** The admin API (PROTOCOL.md 6) against a real coordinator and a real bank. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionCounts, TransactionDetailView, TransactionPage, TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  accountService,
  accountsOf,
  coordinator,
  getJson,
  openAccount,
  postJson,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;
let client: TransactionClient;

// Automatic retries are slow here, so that a prompt finish proves the operator's retry did it.
const SLOW_RETRIES = { RECOVERY_INTERVAL_MS: '200', RETRY_BASE_MS: '60000', RETRY_MAX_MS: '60000', LEASE_MS: '1500', CALL_TIMEOUT_MS: '700' };
/** The console's trace links: a Grafana Tempo explore URL, `{traceId}` in it twice. */
const TRACE_UI_URL = 'http://127.0.0.1:3000/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22{traceId}%22%7D%5D%7D&trace={traceId}';

const debit = (account: string, amount: number) => ({ participant: 'bank', action: 'debit', payload: { accountId: account, amount } });

beforeAll(async () => {
  databases = await Promise.all(['admin_coord', 'admin_bank'].map((p) => createTestDatabase(p)));
  coord = await coordinator('admin-coordinator', databases[0].url, { ...SLOW_RETRIES, TRACE_UI_URL });
  await coord.start();
  bank = await accountService('bank', databases[1].url, coord.url);
  await bank.start();
  client = new TransactionClient({ coordinatorUrl: coord.url });
  await openAccount(bank, 'adm', 100_000);
  for (let i = 1; i <= 5; i++) await client.begin({ mode: 'tcc', gid: `adm-tcc-${i}`, wait: true, branches: [debit('adm', 10)] });
  await client.begin({ mode: 'saga', gid: 'adm-saga-1', wait: true, steps: [{ name: 's1', ...debit('adm', 10) }] });
  await client.begin({ mode: 'tcc', gid: 'adm-refused', wait: true, branches: [debit('adm', 10_000_000)] });
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('GET /admin/transactions', () => {
  it('pages through every transaction newest first with a cursor, without overlap', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: TransactionPage = await getJson(`${coord.url}/admin/transactions?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((t) => t.gid));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(7);
    expect(seen[0]).toBe('adm-refused');
    expect(seen.at(-1)).toBe('adm-tcc-1');
  });

  it('filters by status, mode and participant', async () => {
    const rolledBack: TransactionPage = await getJson(`${coord.url}/admin/transactions?status=rolled_back`);
    expect(rolledBack.items.map((t) => t.gid)).toEqual(['adm-refused']);
    const sagas: TransactionPage = await getJson(`${coord.url}/admin/transactions?mode=saga`);
    expect(sagas.items.map((t) => t.gid)).toEqual(['adm-saga-1']);
    const byBank: TransactionPage = await getJson(`${coord.url}/admin/transactions?participant=bank&limit=100`);
    expect(byBank.items).toHaveLength(7);
    const nobody: TransactionPage = await getJson(`${coord.url}/admin/transactions?participant=nobody`);
    expect(nobody.items).toHaveLength(0);
  });

  it('refuses bad filters with 400 naming the field', async () => {
    for (const [query, field] of [['status=lost', 'status'], ['limit=0', 'limit'], ['cursor=!!', 'cursor'], ['from=yesterday', 'from']]) {
      const response = await fetch(`${coord.url}/admin/transactions?${query}`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { field: string }).field).toBe(field);
    }
  });
});

describe('GET /admin/transactions/{gid}', () => {
  it('shows the branches and the full history, oldest first', async () => {
    const detail: TransactionDetailView = await getJson(`${coord.url}/admin/transactions/adm-refused`);
    expect(detail.status).toBe('rolled_back');
    const types = detail.events.map((e) => e.type);
    expect(types[0]).toBe('created');
    expect(types.at(-1)).toBe('status');
    expect(detail.events.filter((e) => e.type === 'call').map((e) => (e.detail as { phase: string }).phase)).toEqual(['try', 'cancel']);
    const times = detail.events.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // Begun without a traceparent: no trace to link to.
    expect(detail.traceId).toBeNull();
    expect(detail.traceUrl).toBeNull();
  });
});

describe('operator actions', () => {
  it('force-rolls back an active transaction (reason admin) and releases what it held', async () => {
    await client.begin({ mode: 'tcc', gid: 'adm-stuck' });
    await client.addBranch('adm-stuck', debit('adm', 500));
    expect((await accountsOf(bank)).totalFrozen).toBe(500);
    const { status, body } = await postJson<TransactionView>(`${coord.url}/admin/transactions/adm-stuck/rollback`, {});
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'rolling_back', reason: 'admin' });
    await until('rolled back', async () => ((await client.get('adm-stuck')).status === 'rolled_back' ? true : undefined));
    expect((await accountsOf(bank)).totalFrozen).toBe(0);
  });

  it('refuses to roll back a committed transaction (409 TX_ALREADY_DECIDED)', async () => {
    const { status, body } = await postJson<{ error: string }>(`${coord.url}/admin/transactions/adm-tcc-1/rollback`, {});
    expect(status).toBe(409);
    expect(body.error).toBe('TX_ALREADY_DECIDED');
  });

  it('retry delivers phase 2 now instead of at the next backoff time', async () => {
    await client.begin({ mode: 'tcc', gid: 'adm-retry' });
    await client.addBranch('adm-retry', debit('adm', 70));
    await bank.process.kill('SIGKILL');
    await client.commit('adm-retry');
    await until('a failed confirm', async () => ((await client.get('adm-retry')).branches[0].attempts >= 2 ? true : undefined));
    await bank.start();
    // The next automatic attempt is a minute away.
    expect((await client.get('adm-retry')).status).toBe('committing');
    const { status } = await postJson(`${coord.url}/admin/transactions/adm-retry/retry`, {});
    expect(status).toBe(200);
    await until('committed after retry', async () => ((await client.get('adm-retry')).status === 'committed' ? true : undefined), 5_000);
    const nothing = await postJson<{ error: string }>(`${coord.url}/admin/transactions/adm-retry/retry`, {});
    expect(nothing.status).toBe(409);
  });

  it('counts transactions by status and mode', async () => {
    const counts: TransactionCounts = await getJson(`${coord.url}/admin/stats`);
    expect(counts.byMode.saga).toBe(1);
    expect(counts.byStatus.committed).toBeGreaterThanOrEqual(7);
    expect(counts.total).toBe(Object.values(counts.byStatus).reduce((a, b) => a + b, 0));
  });
});

// Last: its transaction would change the counts the tests above read.
describe('the trace of a transaction', () => {
  it("is in the admin view (traceId, traceUrl from TRACE_UI_URL), not in the public one (PROTOCOL.md 3.4)", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const begun = await fetch(`${coord.url}/v1/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      body: JSON.stringify({ mode: 'tcc', gid: 'adm-traced', wait: true, branches: [debit('adm', 10)] }),
    });
    expect(begun.status).toBe(201);
    const detail: TransactionDetailView = await getJson(`${coord.url}/admin/transactions/adm-traced`);
    expect(detail.traceId).toBe(traceId);
    expect(detail.traceUrl).toBe(TRACE_UI_URL.replaceAll('{traceId}', traceId));
    const view = await getJson<Record<string, unknown>>(`${coord.url}/v1/transactions/adm-traced`);
    expect(view.status).toBe('committed');
    expect(Object.keys(view)).not.toContain('traceId');
    expect(Object.keys(view)).not.toContain('traceUrl');
  });
});
