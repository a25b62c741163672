/**
 * The web console (GET /admin) in a real browser (Debian's chromium through playwright-core)
 * against a real coordinator and two real banks, with real transfers between them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
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
import { scriptedParticipant, type ScriptedAnswer, type ScriptedParticipant } from '../support/scripted-participant.js';

const SCREENSHOTS = join(ROOT, '.data/screenshots');

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bankA: ServiceHandle;
let bankB: ServiceHandle;
let client: TransactionClient;
let browser: Browser;
let page: Page;

/** Where the console links a transaction's trace (a Jaeger's trace page; nothing listens there). */
const TRACE_UI = 'http://127.0.0.1:16686/trace/{traceId}';

// Automatic phase-2 retries are far apart, so what the page shows about the transaction left
// in phase 2 comes from the operator's retry; one failed round is enough to need attention.
const COORDINATOR_ENV = { RETRY_BASE_MS: '60000', RETRY_MAX_MS: '60000', ATTENTION_AFTER_ATTEMPTS: '1', CALL_TIMEOUT_MS: '1000', LEASE_MS: '3000', TRACE_UI_URL: TRACE_UI };
const LONG_TIMEOUT_MS = 600_000;
/**
 * The browser's zone: not UTC and not a whole hour off it, so a time shown without its zone, or
 * converted wrongly, shows. No daylight saving there, so the offset is the same all year.
 */
const ZONE = { id: 'Asia/Kolkata', offset: '+05:30', minutes: 330 };
/** The most a wait for something the page shows may take on a loaded machine; it ends as soon as the page shows it. */
const CEILING = { timeout: 60_000 };
const DESKTOP = { width: 1360, height: 900 };

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
async function readAll(selector: string, attributes: string[], on: Page = page): Promise<ReadElement[]> {
  const found = await on.locator(selector).all();
  return Promise.all(
    found.map(async (element) => {
      const read: ReadElement = { text: await element.innerText() };
      for (const name of attributes) read[name] = await element.getAttribute(`data-${name}`);
      return read;
    }),
  );
}
const shownGids = async () => (await readAll('.tx-table tbody tr[data-gid]', ['gid'])).map((r) => r.gid);
const screenshot = (name: string, on: Page = page) => on.screenshot({ path: join(SCREENSHOTS, `console-${name}.png`), fullPage: true });

/** An instant as the console shows it in ZONE: local date and time to the second (or the time to the millisecond), then the offset. */
function inZone(iso: string, precision: 'seconds' | 'milliseconds' = 'seconds'): string {
  const wall = new Date(Date.parse(iso) + ZONE.minutes * 60_000).toISOString();
  return precision === 'seconds' ? `${wall.slice(0, 10)} ${wall.slice(11, 19)}${ZONE.offset}` : `${wall.slice(11, 23)}${ZONE.offset}`;
}

/** Every element `selector` matches shows the instant of its `attribute` (an ISO time) in ZONE, with the offset; how many there are. */
async function expectZonedTimes(on: Page, selector: string, attribute: 'title' | 'datetime', precision: 'seconds' | 'milliseconds' = 'seconds'): Promise<number> {
  const shown = await on.locator(selector).all();
  for (const element of shown) {
    const iso = (await element.getAttribute(attribute)) ?? '';
    expect((await element.textContent())?.trim(), `${selector} ${iso}`).toBe(inZone(iso, precision));
  }
  return shown.length;
}

/** A page of its own (its own size and live stream), in ZONE like the main one. */
async function newPage(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, timezoneId: ZONE.id });
  return { context, page: await context.newPage() };
}

interface Box {
  name: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The header's parts on screen: the name, each view's link, the live state. */
async function headerBoxes(on: Page): Promise<Box[]> {
  const boxes: Box[] = [];
  for (const [name, locator] of [['brand', on.locator('.topbar .brand')], ...(await on.locator('.topbar .nav a').all()).map((link, i) => [`nav ${i}`, link] as const), ['live', on.locator('#live')]] as const) {
    const box = await locator.boundingBox();
    expect(box, name).not.toBeNull();
    boxes.push({ name, ...box! });
  }
  return boxes;
}

const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/** No two parts of the header overlap, and each is inside the window, width `width`. */
async function expectTidyHeader(on: Page, width: number): Promise<Box[]> {
  const boxes = await headerBoxes(on);
  expect(boxes.length).toBe(5);
  for (const box of boxes) {
    expect(box.x, box.name).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width, box.name).toBeLessThanOrEqual(width);
  }
  for (const [i, a] of boxes.entries()) for (const b of boxes.slice(i + 1)) expect(overlap(a, b), `${a.name} overlaps ${b.name}`).toBe(false);
  // Nothing on the page is wider than the window: a wide table scrolls inside its panel.
  expect(await on.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(width);
  return boxes;
}

/** Waits until the list shows the rows for these filters (`status=rolled_back`, '' for none). */
const listReady = (query: string, on: Page = page) => on.locator(`.tx-table[data-state="ready"][data-query="${query}"]`).waitFor();

/** Waits until the page has its live stream open: from then on no change is missed. */
async function openConsole(hash = '#/', on: Page = page, url = coord.url): Promise<void> {
  await on.goto(`${url}/admin${hash}`);
  await on.locator('#live[data-state="live"]').waitFor();
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
    page = (await newPage(DESKTOP)).page;
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
      // Created and updated of each row, in the browser's zone with its offset; the time range's inputs name the zone.
      expect(await expectZonedTimes(page, '.tx-table td.time', 'title')).toBe(12);
      expect(await page.locator('[data-testid="range-zone"]').innerText()).toBe(`UTC${ZONE.offset}`);
      await screenshot('list');
    });

    it('stacks the header on a narrow screen (420 px) instead of overlapping its parts; one row on a wide one', async () => {
      await openConsole('#/');
      await listReady('');
      const wide = await expectTidyHeader(page, DESKTOP.width);
      // One row: some height is shared by every part.
      expect(Math.max(...wide.map((b) => b.y))).toBeLessThan(Math.min(...wide.map((b) => b.y + b.height)));

      const { context, page: narrow } = await newPage({ width: 420, height: 800 });
      try {
        await openConsole('#/', narrow);
        await listReady('', narrow);
        const boxes = await expectTidyHeader(narrow, 420);
        const [brand, live] = [boxes[0], boxes.at(-1)!];
        // The views' links go on a row of their own, under the name and the live state.
        for (const link of boxes.slice(1, -1)) expect(link.y, link.name).toBeGreaterThanOrEqual(Math.max(brand.y + brand.height, live.y + live.height));
        await screenshot('narrow-list', narrow);

        await openConsole('#/tx/con-attn', narrow);
        await narrow.locator('[data-testid="tx-header"][data-gid="con-attn"]').waitFor();
        await expectTidyHeader(narrow, 420);
        await screenshot('narrow-transaction', narrow);
      } finally {
        await context.close();
      }
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

      const timeline = page.locator('[data-testid="timeline"] > li');
      expect(await timeline.count()).toBe(detail.events.length);
      const shown = await readAll('[data-testid="timeline"] > li', ['type', 'phase', 'attempt']);
      expect(shown.map((e) => e.type)).toEqual(detail.events.map((e) => e.type));
      const calls = shown.filter((e) => e.type === 'call');
      expect(calls.map((c) => c.phase)).toEqual(detail.events.filter((e) => e.type === 'call').map((e) => (e.detail as { phase: string }).phase));
      const failedTry = calls.find((c) => c.phase === 'try' && c.text.includes('bank-a'));
      expect(failedTry?.text).toContain('failed');
      expect(failedTry?.text).toContain('insufficient funds');
      expect(failedTry?.text).toContain('attempt 1');
      expect(calls.some((c) => c.phase === 'cancel' && c.text.includes('bank-b') && c.text.includes('ok'))).toBe(true);
      expect(shown.at(-1)?.text).toContain('rolling_back → rolled_back');
      // Attempts count within a phase: each branch's cancel is its attempt 1, though the stored
      // detail.attempt counts the branch's calls over its phases (its try was the first).
      const cancels = calls.filter((c) => c.phase === 'cancel');
      expect(cancels.length).toBe(2);
      for (const cancel of cancels) {
        expect(cancel.attempt).toBe('1');
        expect(cancel.text).toMatch(/\battempt 1\b/);
      }
      const storedCancels = detail.events.filter((e) => e.type === 'call' && (e.detail as { phase: string }).phase === 'cancel');
      expect(storedCancels.map((e) => (e.detail as { attempt: number }).attempt)).toEqual([2, 2]);
      // Its times, in the browser's zone with the offset.
      expect(await expectZonedTimes(page, '[data-testid="tx-header"] .meta dd[title]', 'title')).toBe(3);
      expect(await expectZonedTimes(page, '[data-testid="timeline"] > li > time', 'datetime', 'milliseconds')).toBe(detail.events.length);
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

      // Each wait ends when the page shows the change; CEILING only bounds how long that may take.
      await client.begin({ mode: 'tcc', gid: 'con-live-1', wait: true, branches: transfer('alice', 'bob', 300) });
      await row('con-live-1', 'committed').waitFor(CEILING);

      await client.begin({ mode: 'tcc', gid: 'con-live-2', timeoutMs: LONG_TIMEOUT_MS });
      await row('con-live-2', 'active').waitFor(CEILING);
      for (const branch of transfer('alice', 'dave', 200)) await client.addBranch('con-live-2', branch);
      await client.commit('con-live-2', { wait: true });
      await row('con-live-2', 'committed').waitFor(CEILING);
      expect((await shownGids()).slice(0, 2)).toEqual(['con-live-2', 'con-live-1']);
      await page.locator('[data-testid="count-total"] .stat-count', { hasText: /^8$/ }).waitFor(CEILING);

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
      expect(await expectZonedTimes(page, '[data-testid="tx-locks"] td.time', 'title', 'milliseconds')).toBe(2);
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
      expect(await expectZonedTimes(page, '[data-testid="held-locks"] td.time', 'title')).toBe(2);
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

  describe('a transaction with many retries', () => {
    const FAILURES = 12;
    const REFUSAL = 'the ledger is being re-indexed after the nightly batch; account a-17 stays locked until the re-index finishes';
    let database: TestDatabase;
    let retrying: CoordinatorHandle;
    let flaky: ScriptedParticipant;

    beforeAll(async () => {
      // Its own coordinator, retrying phase 2 at once and without a circuit breaker or an attention
      // flag in between, so the failed confirms follow each other as fast as the recovery loop goes.
      database = await createTestDatabase('console_retries');
      retrying = await coordinator('console-retry-coordinator', database.url, {
        RETRY_BASE_MS: '10',
        RETRY_MAX_MS: '20',
        RECOVERY_INTERVAL_MS: '20',
        ATTENTION_AFTER_ATTEMPTS: '1000',
        BREAKER_FAILURE_THRESHOLD: '0',
      });
      await retrying.start();
      // Answers its confirm with a 503 FAILURES times, then agrees.
      flaky = await scriptedParticipant((call, earlier): ScriptedAnswer =>
        call.phase === 'confirm' && earlier.filter((c) => c.phase === 'confirm').length < FAILURES ? { status: 503, body: { message: REFUSAL } } : { status: 200, body: {} },
      );
      const registered = await postJson(`${retrying.url}/v1/participants`, { name: 'con-flaky', transport: 'http', endpoint: flaky.endpoint, actions: [{ name: 'reserve', modes: ['tcc'] }] });
      expect(registered.status).toBe(201);
    });

    afterAll(async () => {
      await retrying?.process.kill();
      await flaky?.close();
      await database?.drop();
    });

    it('folds the failed confirms into one line (count, first and last time, last error) that opens to each, attempts numbered within the phase', async () => {
      const retryingClient = new TransactionClient({ coordinatorUrl: retrying.url });
      await retryingClient.begin({ mode: 'tcc', gid: 'con-retries', branches: [{ participant: 'con-flaky', action: 'reserve', payload: {} }] });
      await until('con-retries to commit', async () => ((await retryingClient.get('con-retries')).status === 'committed' ? true : undefined), CEILING.timeout);
      const detail = await getJson<TransactionDetailView>(`${retrying.url}/admin/transactions/con-retries`);
      const confirms = detail.events.filter((e) => e.type === 'call' && (e.detail as { phase: string }).phase === 'confirm');
      const confirmDetail = (i: number) => confirms[i].detail as { outcome: string; attempt: number; error?: string };
      expect(confirms.map((_, i) => confirmDetail(i).outcome)).toEqual([...Array<string>(FAILURES).fill('transient'), 'ok']);
      // The stored counter runs over the branch's phases: its first confirm is its second call.
      expect(confirmDetail(0).attempt).toBe(2);

      const { context, page: own } = await newPage(DESKTOP);
      try {
        await openConsole('#/tx/con-retries', own, retrying.url);
        await own.locator('[data-testid="tx-header"][data-gid="con-retries"][data-status="committed"]').waitFor();
        // The branch table counts calls over both phases (the try, then every confirm), and says so.
        const [calls] = await readAll('[data-testid="branches"] tbody tr', ['branch'], own);
        expect(calls.text.split('\t')).toContain(String(FAILURES + 2));
        expect(await own.locator('[data-testid="branches"] thead th.num').innerText()).toMatch(/^calls$/i);
        // One line for the FAILURES failed confirms, one for each other event.
        expect(await own.locator('[data-testid="timeline"] > li').count()).toBe(detail.events.length - FAILURES + 1);
        const folded = own.locator('[data-testid="timeline"] > li.repeated');
        expect(await folded.count()).toBe(1);
        expect(await folded.getAttribute('data-phase')).toBe('confirm');
        expect(await folded.getAttribute('data-repeat')).toBe(String(FAILURES));
        const summary = await folded.locator('summary').innerText();
        expect(summary).toContain(`con-flaky / reserve ← confirm: transient ×${FAILURES}`);
        expect(summary).toContain(`attempts 1–${FAILURES}`);
        expect(summary).toContain(`first ${inZone(confirms[0].at, 'milliseconds')}`);
        expect(summary).toContain(`last ${inZone(confirms[FAILURES - 1].at, 'milliseconds')}`);
        expect(confirmDetail(FAILURES - 1).error).toContain(REFUSAL);
        expect(summary).toContain(`last error: ${confirmDetail(FAILURES - 1).error}`);

        // Folded until opened; then every call, numbered 1 to FAILURES.
        const each = folded.locator('ol.repeats > li');
        expect(await each.first().isVisible()).toBe(false);
        await folded.locator('summary').click();
        await each.first().waitFor();
        const opened = await readAll('[data-testid="timeline"] > li.repeated ol.repeats > li', ['attempt'], own);
        expect(opened.map((e) => e.attempt)).toEqual(Array.from({ length: FAILURES }, (_, i) => String(i + 1)));
        expect(opened[0].text).toContain(REFUSAL);

        // The try is attempt 1 of its phase, and so is the first confirm; the confirm that went through is the last of its phase.
        expect(await own.locator('[data-testid="timeline"] > li[data-phase="try"]').getAttribute('data-attempt')).toBe('1');
        const through = own.locator('[data-testid="timeline"] > li[data-phase="confirm"]:not(.repeated)');
        expect(await through.getAttribute('data-attempt')).toBe(String(FAILURES + 1));
        expect(await through.innerText()).toContain(`attempt ${FAILURES + 1}`);
        await screenshot('retries', own);
      } finally {
        await context.close();
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

  describe('trace link', () => {
    it("links a transaction begun in a trace to it in the tracing UI (TRACE_UI_URL), and one begun without to nothing", async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const begun = await fetch(`${coord.url}/v1/transactions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
        body: JSON.stringify({ mode: 'tcc', gid: 'con-traced', timeoutMs: LONG_TIMEOUT_MS }),
      });
      expect(begun.status).toBe(201);
      const detail = await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/con-traced`);
      expect(detail.traceId).toBe(traceId);
      expect(detail.traceUrl).toBe(`http://127.0.0.1:16686/trace/${traceId}`);

      await openConsole('#/tx/con-traced');
      const link = page.locator('[data-testid="tx-header"][data-gid="con-traced"] a[data-testid="tx-trace"]');
      await link.waitFor(CEILING);
      expect(await link.getAttribute('href')).toBe(detail.traceUrl);
      expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
      expect(await link.innerText()).toBe(traceId);
      expect(await page.locator('[data-testid="tx-header"] .meta dt', { hasText: 'Trace' }).count()).toBe(1);
      await screenshot('trace-link');

      // con-stuck was begun without a traceparent: no trace, no link.
      expect((await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/con-stuck`)).traceId).toBeNull();
      await openConsole('#/tx/con-stuck');
      await page.locator('[data-testid="tx-header"][data-gid="con-stuck"]').waitFor(CEILING);
      expect(await page.locator('[data-testid="tx-trace"]').count()).toBe(0);
    });
  });
});
