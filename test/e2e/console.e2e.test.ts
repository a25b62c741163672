/**
 * The web console (GET /admin) in a real browser (Debian's chromium through playwright-core)
 * against a real coordinator and two real banks, with real transfers between them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParticipantAdminView, TransactionCounts, TransactionDetailView, TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  ROOT,
  accountService,
  accountsOf,
  coordinator,
  generateApiKeys,
  getJson,
  openAccount,
  postJson,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import { describeInBrowser, launchChromium } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

const SCREENSHOTS = join(ROOT, '.data/screenshots');

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bankA: ServiceHandle;
let bankB: ServiceHandle;
let client: TransactionClient;
let browser: Browser;
let page: Page;

// Automatic phase-2 retries are far apart, so what the page shows about the transaction left
// in phase 2 comes from the operator's retry; one failed round is enough to need attention.
const COORDINATOR_ENV = { RETRY_BASE_MS: '60000', RETRY_MAX_MS: '60000', ATTENTION_AFTER_ATTEMPTS: '1', CALL_TIMEOUT_MS: '1000', LEASE_MS: '3000' };
const LONG_TIMEOUT_MS = 600_000;

const transfer = (from: string, to: string, amount: number) => [
  { participant: 'bank-a', action: 'debit', payload: { accountId: from, amount } },
  { participant: 'bank-b', action: 'credit', payload: { accountId: to, amount } },
];

const row = (gid: string, status?: string) => page.locator(`.tx-table tbody tr[data-gid="${gid}"]${status ? `[data-status="${status}"]` : ''}`);
/** Reads data attributes and text of every element a selector matches (the test has no DOM types). */
interface ReadElement {
  text: string;
  [attribute: string]: string | null;
}
async function readAll(selector: string, attributes: string[]): Promise<ReadElement[]> {
  const found = await page.locator(selector).all();
  return Promise.all(
    found.map(async (element) => {
      const read: ReadElement = { text: await element.innerText() };
      for (const name of attributes) read[name] = await element.getAttribute(`data-${name}`);
      return read;
    }),
  );
}
const shownGids = async () => (await readAll('.tx-table tbody tr[data-gid]', ['gid'])).map((r) => r.gid);
const screenshot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `console-${name}.png`), fullPage: true });

/** Waits until the list shows the rows for these filters (`status=rolled_back`, '' for none). */
const listReady = (query: string) => page.locator(`.tx-table[data-state="ready"][data-query="${query}"]`).waitFor();

/** Waits until the page has its live stream open: from then on no change is missed. */
async function openConsole(hash = '#/'): Promise<void> {
  await page.goto(`${coord.url}/admin${hash}`);
  await page.locator('#live[data-state="live"]').waitFor();
}

// Everything below drives chromium: without it, the file is one failing test naming the fix.
describeInBrowser('the web console in chromium', () => {
  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    databases = await Promise.all(['console_coord', 'console_bank_a', 'console_bank_b'].map((p) => createTestDatabase(p)));
    coord = await coordinator('console-coordinator', databases[0].url, COORDINATOR_ENV);
    await coord.start();
    bankA = await accountService('bank-a', databases[1].url, coord.url);
    bankB = await accountService('bank-b', databases[2].url, coord.url);
    await Promise.all([bankA.start(), bankB.start()]);
    await openAccount(bankA, 'alice', 100_000);
    await openAccount(bankA, 'carol', 5_000);
    await openAccount(bankB, 'bob', 0);
    await openAccount(bankB, 'dave', 0);
    client = new TransactionClient({ coordinatorUrl: coord.url });

    // The demo's transfers: two that commit, one refused for insufficient funds, a saga.
    await client.begin({ mode: 'tcc', gid: 'con-1', wait: true, branches: transfer('alice', 'bob', 25_000) });
    await client.tcc(
      async (tx) => {
        await tx.branch('bank-a', 'debit', { accountId: 'alice', amount: 10_000 });
        await tx.branch('bank-b', 'credit', { accountId: 'dave', amount: 10_000 });
      },
      { gid: 'con-2' },
    );
    await client.begin({ mode: 'tcc', gid: 'con-3', wait: true, branches: transfer('carol', 'bob', 99_900) });
    await client.begin({
      mode: 'saga',
      gid: 'con-saga',
      wait: true,
      steps: transfer('alice', 'dave', 1_000).map((step, i) => ({ name: `s${i + 1}`, ...step })),
    });
    // An interactive transfer its client never decides: active until its deadline.
    await client.begin({ mode: 'tcc', gid: 'con-stuck', timeoutMs: LONG_TIMEOUT_MS });
    await client.addBranch('con-stuck', transfer('alice', 'bob', 500)[0]);
    // Committed while bank B is down: confirm fails, so it stays committing and needs attention.
    await client.begin({ mode: 'tcc', gid: 'con-attn', timeoutMs: LONG_TIMEOUT_MS });
    for (const branch of transfer('alice', 'bob', 700)) await client.addBranch('con-attn', branch);
    await bankB.process.kill('SIGKILL');
    await client.commit('con-attn');
    await until('con-attn to need attention', async () => ((await client.get('con-attn')).needsAttention ? true : undefined));

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([bankA?.process.kill(), bankB?.process.kill(), coord?.process.kill()]);
    await Promise.all(databases.map((d) => d.drop()));
  });

  describe('the list of transactions', () => {
    it('shows every transaction newest first with its status, and the counts of GET /admin/stats', async () => {
      await openConsole();
      await listReady('');
      expect(await shownGids()).toEqual(['con-attn', 'con-stuck', 'con-saga', 'con-3', 'con-2', 'con-1']);
      for (const [gid, status] of [['con-1', 'committed'], ['con-2', 'committed'], ['con-3', 'rolled_back'], ['con-saga', 'committed'], ['con-stuck', 'active']]) {
        expect(await row(gid).getAttribute('data-status')).toBe(status);
      }
      expect(await row('con-3').innerText()).toContain('branch failed');

      const stats = await getJson<TransactionCounts>(`${coord.url}/admin/stats`);
      expect(stats).toMatchObject({ total: 6, needsAttention: 1, byStatus: { committed: 3, rolled_back: 1, active: 1, committing: 1 } });
      const count = async (id: string) => Number(await page.locator(`[data-testid="count-${id}"] .stat-count`).innerText());
      await page.locator('[data-testid="count-total"] .stat-count', { hasText: '6' }).waitFor();
      expect(await count('committed')).toBe(3);
      expect(await count('rolled_back')).toBe(1);
      expect(await count('active')).toBe(1);
      expect(await count('committing')).toBe(1);
      expect(await count('attention')).toBe(1);
      expect(await page.locator('[data-testid="count-modes"]').innerText()).toMatch(/tcc\s*5.*saga\s*1/s);
      await screenshot('list');
    });

    it('puts the transaction that needs attention first, with why', async () => {
      const panel = page.locator('[data-testid="attention-panel"]');
      await panel.waitFor();
      const items = (await readAll('[data-testid="attention-panel"] li', ['gid'])).map((li) => li.gid);
      expect(items).toEqual(['con-attn']);
      expect(await panel.innerText()).toContain('bank-b');
      expect(await row('con-attn').getAttribute('class')).toContain('needs-attention');
    });

    it('narrows the list with the filters (status, mode, participant, needs attention, time range)', async () => {
      await page.locator('select[name="status"]').selectOption('rolled_back');
      await listReady('status=rolled_back');
      expect(page.url()).toContain('#/?status=rolled_back');
      expect(await shownGids()).toEqual(['con-3']);
      await screenshot('filtered');

      await page.locator('select[name="mode"]').selectOption('saga');
      await listReady('status=rolled_back&mode=saga');
      expect(await page.locator('.tx-table tbody tr.empty').innerText()).toContain('No transactions match');

      await openConsole('#/?mode=saga');
      await listReady('mode=saga');
      expect(await shownGids()).toEqual(['con-saga']);

      await openConsole('#/');
      await listReady('');
      await page.locator('input[name="participant"]').fill('bank-b');
      await page.locator('input[name="participant"]').press('Enter');
      await listReady('participant=bank-b');
      // con-stuck has only a bank-a branch.
      expect(await shownGids()).toEqual(['con-attn', 'con-saga', 'con-3', 'con-2', 'con-1']);

      await openConsole('#/');
      await listReady('');
      await page.locator('input[name="attention"]').check();
      await listReady('attention=true');
      expect(await shownGids()).toEqual(['con-attn']);

      // Time range: created before con-3 (the API's `to` is exclusive), then from con-3 on.
      const con3 = await client.get('con-3');
      const before = new URLSearchParams({ to: con3.createdAt }).toString();
      await openConsole(`#/?${before}`);
      await listReady(before);
      expect(await shownGids()).toEqual(['con-2', 'con-1']);
      const api = await getJson<{ items: TransactionView[] }>(`${coord.url}/admin/transactions?${before}`);
      expect(api.items.map((t) => t.gid)).toEqual(['con-2', 'con-1']);
      // The range shows in the inputs, in local time.
      expect(await page.locator('input[name="to"]').inputValue()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d$/);
      const since = new URLSearchParams({ from: con3.createdAt }).toString();
      await openConsole(`#/?${since}`);
      await listReady(since);
      expect(await shownGids()).toEqual(['con-attn', 'con-stuck', 'con-saga', 'con-3']);
    });

    it('pages with the cursor: "Load more" appends the next page', async () => {
      await openConsole('#/?limit=4');
      await listReady('limit=4');
      expect(await shownGids()).toEqual(['con-attn', 'con-stuck', 'con-saga', 'con-3']);
      const loadMore = page.locator('button', { hasText: 'Load more' });
      expect(await loadMore.isVisible()).toBe(true);
      await loadMore.click();
      await row('con-1').waitFor();
      expect(await shownGids()).toEqual(['con-attn', 'con-stuck', 'con-saga', 'con-3', 'con-2', 'con-1']);
      await loadMore.waitFor({ state: 'hidden' });
    });
  });

  describe("a transaction's page", () => {
    it('shows the branches and a timeline of who was called, when, with what answer', async () => {
      await openConsole('#/');
      await listReady('');
      await row('con-3').locator('a.gid').click();
      const header = page.locator('[data-testid="tx-header"][data-gid="con-3"]');
      await header.waitFor();
      expect(await header.getAttribute('data-status')).toBe('rolled_back');
      expect(await page.locator('[data-testid="tx-reason"]').innerText()).toContain('branch failed');

      expect(page.url()).toContain('#/tx/con-3');
      const branches = await readAll('[data-testid="branches"] tbody tr', ['branch', 'status']);
      const detail = await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/con-3`);
      expect(branches.map((b) => [b.branch, b.status])).toEqual(detail.branches.map((b) => [b.branchId, b.status]));
      expect(branches.map((b) => b.branch)).toEqual(['b1', 'b2']);
      expect(branches[0].text).toContain('bank-a');
      expect(branches[0].text).toContain('insufficient funds');
      expect(branches[1].text).toContain('bank-b');

      const timeline = page.locator('[data-testid="timeline"] li');
      expect(await timeline.count()).toBe(detail.events.length);
      const shown = await readAll('[data-testid="timeline"] li', ['type', 'phase']);
      expect(shown.map((e) => e.type)).toEqual(detail.events.map((e) => e.type));
      const calls = shown.filter((e) => e.type === 'call');
      expect(calls.map((c) => c.phase)).toEqual(detail.events.filter((e) => e.type === 'call').map((e) => (e.detail as { phase: string }).phase));
      const failedTry = calls.find((c) => c.phase === 'try' && c.text.includes('bank-a'));
      expect(failedTry?.text).toContain('failed');
      expect(failedTry?.text).toContain('insufficient funds');
      expect(failedTry?.text).toContain('attempt 1');
      expect(calls.some((c) => c.phase === 'cancel' && c.text.includes('bank-b') && c.text.includes('ok'))).toBe(true);
      expect(shown.at(-1)?.text).toContain('rolling_back → rolled_back');
      await screenshot('transaction');
    });

    it('retries phase 2 after a confirmation, and shows the operator retry in the timeline', async () => {
      await openConsole('#/tx/con-attn');
      const header = page.locator('[data-testid="tx-header"][data-gid="con-attn"][data-status="committing"]');
      await header.waitFor();
      expect(await page.locator('button[data-action="rollback"]').isDisabled()).toBe(true);

      // Cancelling the dialog does nothing.
      await page.locator('button[data-action="retry"]').click();
      await page.locator('#confirm-dialog[open]').waitFor();
      await page.locator('#confirm-cancel').click();
      await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
      expect((await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/con-attn`)).events.map((e) => e.type)).not.toContain('admin_retry');

      await page.locator('button[data-action="retry"]').click();
      await page.locator('#confirm-ok').click();
      await page.locator('#toast', { hasText: 'Retry scheduled' }).waitFor();
      await page.locator('[data-testid="timeline"] li[data-type="admin_retry"]').waitFor();
      const detail = await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/con-attn`);
      expect(detail.events.map((e) => e.type)).toContain('admin_retry');
      await screenshot('attention');
    });
  });

  describe('live updates', () => {
    it('adds new transactions and moves their status on the open page, without reloading it', async () => {
      await bankB.start(); // back for the transfers below (con-attn may now finish too)
      await openConsole('#/');
      await listReady('');
      // A reload would lose this mark.
      await page.evaluate('window.consoleNotReloaded = true');

      await client.begin({ mode: 'tcc', gid: 'con-live-1', wait: true, branches: transfer('alice', 'bob', 300) });
      await row('con-live-1', 'committed').waitFor();

      await client.begin({ mode: 'tcc', gid: 'con-live-2', timeoutMs: LONG_TIMEOUT_MS });
      await row('con-live-2', 'active').waitFor();
      for (const branch of transfer('alice', 'dave', 200)) await client.addBranch('con-live-2', branch);
      await client.commit('con-live-2', { wait: true });
      await row('con-live-2', 'committed').waitFor();
      expect((await shownGids()).slice(0, 2)).toEqual(['con-live-2', 'con-live-1']);
      await page.locator('[data-testid="count-total"] .stat-count', { hasText: '8' }).waitFor();

      expect(await page.evaluate('window.consoleNotReloaded === true')).toBe(true);
      await screenshot('live');
    });
  });

  describe('force rollback', () => {
    it('rolls an active transaction back after a confirmation; the page and the API show rolled_back (admin)', async () => {
      expect((await accountsOf(bankA)).totalFrozen).toBe(500);
      await openConsole('#/tx/con-stuck');
      await page.locator('[data-testid="tx-header"][data-gid="con-stuck"][data-status="active"]').waitFor();
      expect(await page.locator('button[data-action="retry"]').isDisabled()).toBe(true);

      await page.locator('button[data-action="rollback"]').click();
      await page.locator('#confirm-dialog[open]').waitFor();
      expect(await page.locator('#confirm-title').innerText()).toContain('con-stuck');
      await screenshot('confirm-rollback');
      await page.locator('#confirm-ok').click();

      await page.locator('[data-testid="tx-header"][data-gid="con-stuck"][data-status="rolled_back"]').waitFor();
      expect(await page.locator('[data-testid="tx-reason"]').innerText()).toContain('admin');
      await page.locator('[data-testid="timeline"] li[data-type="call"][data-phase="cancel"]').waitFor();
      const view = await getJson<TransactionView>(`${coord.url}/admin/transactions/con-stuck`);
      expect(view).toMatchObject({ status: 'rolled_back', reason: 'admin' });
      expect((await accountsOf(bankA)).totalFrozen).toBe(0);
      await screenshot('rolled-back');
    });
  });

  describe('escaping', () => {
    it('shows markup in data as text, never as elements', async () => {
      const markup = '<img src=x onerror="window.consolePwned=1"><b>bold</b>';
      await client.begin({ mode: 'tcc', gid: 'con-markup', wait: true, metadata: { note: markup }, branches: transfer('alice', 'bob', 100) });
      await openConsole('#/tx/con-markup');
      await page.locator('[data-testid="tx-header"][data-gid="con-markup"]').waitFor();
      expect(await page.locator('[data-testid="tx-header"] .meta').innerText()).toContain(markup.replaceAll('"', '\\"'));
      expect(await page.locator('main img, main b').count()).toBe(0);
      expect(await page.evaluate('window.consolePwned === undefined')).toBe(true);
    });
  });

  describe('locks', () => {
    it('shows the rows an AT transaction holds locked, on its page and in the Locks view, until its commit releases them', async () => {
      await openAccount(bankA, 'erin', 10_000);
      await openAccount(bankB, 'frank', 0);
      // An interactive AT transfer: each branch's prepare locks its account row until phase 2.
      await client.begin({ mode: '2pc', gid: 'con-locks', timeoutMs: LONG_TIMEOUT_MS });
      await client.addBranch('con-locks', { branchId: 'debit', participant: 'bank-a', action: 'at-debit', payload: { accountId: 'erin', amount: 400 } });
      await client.addBranch('con-locks', { branchId: 'credit', participant: 'bank-b', action: 'at-credit', payload: { accountId: 'frank', amount: 400 } });

      await openConsole('#/tx/con-locks');
      await page.locator('[data-testid="tx-header"][data-gid="con-locks"][data-status="active"]').waitFor();
      const locked = await readAll('[data-testid="tx-locks"] tbody tr', ['branch', 'table', 'key', 'state']);
      expect(locked.map((r) => [r.branch, r.table, r.key, r.state])).toEqual([
        ['debit', 'public.accounts', '["erin"]', 'held'],
        ['credit', 'public.accounts', '["frank"]', 'held'],
      ]);
      expect(locked[0].text).toContain('held');
      await screenshot('transaction-locks');

      await page.locator('#nav-locks').click();
      await page.locator('[data-testid="held-locks"][data-state="ready"]').waitFor();
      expect(await page.locator('#nav-locks').getAttribute('aria-current')).toBe('page');
      const held = await readAll('[data-testid="held-locks"] tbody tr[data-gid]', ['gid', 'branch', 'status']);
      // Held longest first: the debit's prepare answered first. No other transaction here is an AT one.
      expect(held.map((r) => [r.gid, r.branch, r.status])).toEqual([
        ['con-locks', 'debit', 'active'],
        ['con-locks', 'credit', 'active'],
      ]);
      expect(held[0].text).toContain('public.accounts ["erin"]');
      expect(held[0].text).toContain('bank-a');
      await screenshot('locks');

      // The commit finishes the transaction: its change reaches the open view, which lists its locks no more.
      await client.commit('con-locks', { wait: true });
      await page.locator('[data-testid="held-locks"][data-state="ready"] tbody tr.empty').waitFor();
      expect(await page.locator('[data-testid="held-locks"] tbody tr[data-gid]').count()).toBe(0);

      await openConsole('#/tx/con-locks');
      await page.locator('[data-testid="tx-header"][data-gid="con-locks"][data-status="committed"]').waitFor();
      const released = await readAll('[data-testid="tx-locks"] tbody tr', ['branch', 'state']);
      expect(released.map((r) => [r.branch, r.state])).toEqual([
        ['debit', 'released'],
        ['credit', 'released'],
      ]);
      expect(released[0].text).toContain('released');
    });
  });

  describe('serving the console', () => {
    it('serves only its own files, with a content security policy on the page', async () => {
      const html = await fetch(`${coord.url}/admin`);
      expect(html.status).toBe(200);
      expect(html.headers.get('content-type')).toContain('text/html');
      expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
      const script = await fetch(`${coord.url}/admin/assets/console.js`);
      expect(script.headers.get('content-type')).toContain('text/javascript');
      for (const path of ['/admin/assets/nothing.js', '/admin/assets/..%2Fsrc%2Fmain.ts', '/admin/assets/..%2F..%2F..%2Fpackage.json']) {
        expect((await fetch(`${coord.url}${path}`)).status).toBe(404);
      }
    });
  });

  describe('behind API keys', () => {
    it("takes the browser's own login (Basic, the admin key as password): a challenge without, 403 with a client key, the console with the admin key", async () => {
      const keys = generateApiKeys();
      const database = await createTestDatabase('console_keys');
      const keyed = await coordinator('console-keyed-coordinator', database.url, { ...COORDINATOR_ENV, API_KEYS: keys.API_KEYS });
      try {
        await keyed.start();
        await new TransactionClient({ coordinatorUrl: keyed.url, apiKey: keys.client }).begin({ mode: 'tcc', gid: 'con-keyed', timeoutMs: LONG_TIMEOUT_MS });

        const visit = async (credentials?: { username: string; password: string }) => {
          const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, ...(credentials ? { httpCredentials: credentials } : {}) });
          const keyedPage = await context.newPage();
          const response = await keyedPage.goto(`${keyed.url}/admin#/`);
          return { context, keyedPage, status: response?.status() };
        };

        // Without a login the coordinator asks for one (Basic challenge); a headless browser has
        // nobody to type it, so the navigation fails on the challenge.
        const challenge = await fetch(`${keyed.url}/admin`);
        expect(challenge.status).toBe(401);
        expect(challenge.headers.get('www-authenticate')).toMatch(/^Basic /);
        await expect(visit()).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);

        const wrongRole = await visit({ username: 'operator', password: keys.client });
        expect(wrongRole.status).toBe(403);
        await wrongRole.context.close();

        const operator = await visit({ username: 'operator', password: keys.admin });
        expect(operator.status).toBe(200);
        // The page's own requests (list, counts, live stream) go through with the same login.
        await operator.keyedPage.locator('#live[data-state="live"]').waitFor();
        await operator.keyedPage.locator('.tx-table tbody tr[data-gid="con-keyed"][data-status="active"]').waitFor();
        await operator.keyedPage.screenshot({ path: join(SCREENSHOTS, 'console-with-api-keys.png'), fullPage: true });
        await operator.context.close();
      } finally {
        await keyed.process.kill();
        await database.drop();
      }
    });
  });

  // Last: its transactions would change the counts the tests above read.
  describe('participants', () => {
    it("shows each participant's gate, with a badge when its circuit breaker is open", async () => {
      // A participant nobody answers for: every call fails, and after BREAKER_FAILURE_THRESHOLD (5) in a row its breaker opens.
      const registered = await postJson(`${coord.url}/v1/participants`, {
        name: 'con-dead',
        transport: 'http',
        endpoint: 'http://127.0.0.1:9/tx',
        actions: [{ name: 'debit', modes: ['tcc'] }],
      });
      expect(registered.status).toBe(201);
      for (let i = 1; i <= 3; i++) await client.begin({ mode: 'tcc', gid: `con-dead-${i}`, branches: [{ participant: 'con-dead', action: 'debit', payload: {} }] });
      await until('the breaker of con-dead to open', async () => {
        const list = await getJson<ParticipantAdminView[]>(`${coord.url}/admin/participants`);
        const load = list.find((p) => p.name === 'con-dead')?.load;
        return load && load.breaker !== 'closed' ? true : undefined;
      });

      await openConsole('#/participants');
      await page.locator('[data-testid="participants"][data-state="ready"]').waitFor();
      const badge = page.locator('tr[data-participant="con-dead"] [data-testid="breaker"] .badge');
      await badge.waitFor();
      expect(await badge.innerText()).toMatch(/^breaker (open|half-open)/);
      const bank = page.locator('tr[data-participant="bank-a"]');
      expect(await bank.getAttribute('data-breaker')).toBe('closed');
      expect(await bank.locator('[data-testid="in-flight"]').innerText()).toMatch(/^0 \/ \d+ \(128\)$/);
      expect(await bank.locator('[data-testid="queued"]').innerText()).toBe('0');
      await screenshot('participants');
    });
  });
});
