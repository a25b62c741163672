/**
 * docs/getting-started.md, run as a reader runs it: the files of its app are taken from the page
 * itself (its `docs-check: file` blocks), written to a folder outside the repository with the
 * packed protocol and SDK tarballs in place of the `^0.1.0` versions, installed and built with
 * the page's own package.json and tsconfig.json. Against a real coordinator, the app's client
 * commits its TCC and its saga; then the page's section 5: the service killed with kill -9
 * between the tries and the commit of a TCC, and before a saga, and both transactions end
 * committed once it is back; a refused TCC's lastError is the participant's 409 body.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { TransactionView } from '@nest-dtx/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectFiles, readCodeBlocks } from '../../scripts/lib/markdown-blocks.js';
import { AppProcess, isPackageName, npmInstall, packWorkspaces, tarballSpec } from '../../scripts/lib/packed-packages.js';
import { DEMO_RECOVERY_ENV, ROOT, coordinator, freePort, getJson, postJson, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { readWallets, type WalletRow } from '../support/wallets.js';

const run = promisify(execFile);
const PAGE = 'docs/getting-started.md';
const workDir = mkdtempSync(join(tmpdir(), 'dtx-getting-started-'));
const packDir = join(workDir, 'packs');
const appDir = join(workDir, 'wallet');

let coordinatorDb: TestDatabase;
let walletDb: TestDatabase;
let coord: CoordinatorHandle;
let walletPort: number;
let wallet: AppProcess | null = null;

/** The page's files by path; the names the test relies on must be there. */
function pageFiles(): Map<string, string> {
  const files = new Map([...projectFiles(readCodeBlocks(PAGE, join(ROOT, PAGE)))].map(([path, block]) => [path, block.code]));
  expect([...files.keys()].sort()).toEqual(['package.json', 'src/app.module.ts', 'src/client.ts', 'src/main.ts', 'src/wallet.migration.ts', 'src/wallet.service.ts', 'tsconfig.json']);
  return files;
}

/** The page's package.json with the packed tarballs for the packages that are not on the registry yet; nothing else changed. */
function withTarballs(manifestText: string): string {
  const manifest = JSON.parse(manifestText) as { dependencies: Record<string, string> };
  for (const name of Object.keys(manifest.dependencies)) if (isPackageName(name)) manifest.dependencies[name] = tarballSpec(packDir, name);
  return JSON.stringify(manifest, null, 2);
}

const appEnv = (): Record<string, string> => ({ PORT: String(walletPort), DATABASE_URL: walletDb.url, COORDINATOR_URL: coord.url });

/** `npm start` in the app folder, as the page says; resolves once the service has registered and answers. */
async function startWallet(): Promise<void> {
  const started = new AppProcess('wallet', appDir, 'npm', ['start'], appEnv());
  wallet = started;
  await until(
    'the wallet service to register',
    async () => {
      if (!started.alive) throw new Error(`the wallet service exited:\n${started.log}`);
      const participants = await getJson<{ name: string; endpoint?: string }[]>(`${coord.url}/v1/participants`);
      return participants.some((p) => p.name === 'wallet' && p.endpoint === `http://127.0.0.1:${walletPort}/tx`) ? true : undefined;
    },
    60_000,
    200,
  );
}

const balances = (): Promise<Record<string, WalletRow>> => readWallets(walletDb.url);

const transaction = (gid: string): Promise<TransactionView> => getJson<TransactionView>(`${coord.url}/v1/transactions/${gid}`);

function untilStatus(gid: string, status: TransactionView['status'], timeoutMs: number): Promise<TransactionView> {
  return until(`${gid} to be ${status}`, async () => {
    const view = await transaction(gid);
    return view.status === status ? view : undefined;
  }, timeoutMs, 200);
}

beforeAll(async () => {
  const files = pageFiles();
  mkdirSync(packDir);
  await packWorkspaces(packDir, ['@nest-dtx/protocol', '@nest-dtx/sdk']);
  for (const [path, code] of files) {
    mkdirSync(dirname(join(appDir, path)), { recursive: true });
    writeFileSync(join(appDir, path), path === 'package.json' ? withTarballs(code) : `${code}\n`);
  }
  await npmInstall(appDir);
  await run('npm', ['run', 'build'], { cwd: appDir });

  coordinatorDb = await createTestDatabase('dtx_getting_started_coordinator');
  walletDb = await createTestDatabase('dtx_getting_started_wallet');
  // The demos' short retry and lease times, so the retries after the restart come within a second.
  coord = await coordinator('getting-started-coordinator', coordinatorDb.url, { ...DEMO_RECOVERY_ENV });
  await coord.start();
  walletPort = await freePort();
  await startWallet();
}, 600_000);

// The work folder holds whole installs (hundreds of MB): removing it took 84 s on a loaded 2-core box.
afterAll(async () => {
  await wallet?.stop();
  await coord?.process.kill();
  await walletDb?.drop();
  await coordinatorDb?.drop();
  rmSync(workDir, { recursive: true, force: true });
}, 300_000);

describe('docs/getting-started.md', () => {
  it('runs its client: the TCC and the saga commit, and the wallets say so', async () => {
    const { stdout } = await run('npm', ['run', '--silent', 'client'], { cwd: appDir, env: { ...process.env, ...appEnv() } });
    expect(stdout).toMatch(/^tcc [0-9a-f-]{36}: committed\nsaga [0-9a-f-]{36}: committed\n$/);
    expect(await balances()).toEqual({ alice: { balance: 80, frozen: 0 }, bob: { balance: 20, frozen: 0 } });
  });

  it('refuses a TCC for more than alice has: rolled back, lastError the 409 body, nothing moved', async () => {
    const refused = await postJson<TransactionView>(`${coord.url}/v1/transactions`, {
      mode: 'tcc',
      gid: 'by-hand-refused',
      wait: true,
      branches: [
        { participant: 'wallet', action: 'debit', payload: { wallet: 'alice', amount: 500 } },
        { participant: 'wallet', action: 'credit', payload: { wallet: 'bob', amount: 500 } },
      ],
    });
    expect(refused.body).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    const debit = refused.body.branches.find((branch) => branch.action === 'debit');
    expect(debit?.lastError).toEqual({ statusCode: 409, error: 'BUSINESS_FAILURE', message: 'not enough money in alice', details: null });
    expect(await balances()).toEqual({ alice: { balance: 80, frozen: 0 }, bob: { balance: 20, frozen: 0 } });
  });

  it('commits a TCC whose service was killed -9 between its tries and the commit, once the service is back', async () => {
    const json = { 'content-type': 'application/json' };
    expect((await postJson<TransactionView>(`${coord.url}/v1/transactions`, { mode: 'tcc', gid: 'by-hand-1' })).status).toBe(201);
    for (const [action, who] of [['debit', 'alice'], ['credit', 'bob']]) {
      const added = await postJson<{ status: string }>(`${coord.url}/v1/transactions/by-hand-1/branches`, { participant: 'wallet', action, payload: { wallet: who, amount: 5 } });
      expect(added).toMatchObject({ status: 201, body: { status: 'prepared' } });
    }
    expect(await balances()).toEqual({ alice: { balance: 80, frozen: 5 }, bob: { balance: 20, frozen: 0 } });

    await wallet?.killNine();
    const commit = await fetch(`${coord.url}/v1/transactions/by-hand-1/commit`, { method: 'POST', headers: json, body: '{}' });
    expect(commit.status).toBe(200);
    expect(((await commit.json()) as TransactionView).status).toBe('committing');
    // The confirms fail while the service is down, each failure recorded as a string: the
    // first may be the kept-alive connection the kill cut (read ECONNRESET), then refusals.
    const failing = await until('a confirm refused a connection', async () => {
      const view = await transaction('by-hand-1');
      return view.branches.some((branch) => typeof branch.lastError === 'string' && branch.lastError.includes('ECONNREFUSED')) ? view : undefined;
    }, 30_000, 200);
    expect(failing.status).toBe('committing');
    for (const branch of failing.branches.filter((b) => b.lastError !== null)) expect(typeof branch.lastError).toBe('string');

    await startWallet();
    await untilStatus('by-hand-1', 'committed', 30_000);
    expect(await balances()).toEqual({ alice: { balance: 75, frozen: 0 }, bob: { balance: 25, frozen: 0 } });
  });

  it('commits a saga begun while its service was killed -9, once the service is back', async () => {
    await wallet?.killNine();
    const begun = await postJson<TransactionView>(`${coord.url}/v1/transactions`, {
      mode: 'saga',
      gid: 'by-hand-2',
      steps: [
        { name: 'withdraw', participant: 'wallet', action: 'withdraw', payload: { wallet: 'bob', amount: 5 } },
        { name: 'deposit', participant: 'wallet', action: 'deposit', payload: { wallet: 'alice', amount: 5 } },
      ],
    });
    expect(begun).toMatchObject({ status: 201, body: { status: 'active' } });
    await until('the first step to fail', async () => {
      const view = await transaction('by-hand-2');
      return typeof view.branches.find((branch) => branch.branchId === 'withdraw')?.lastError === 'string' ? view : undefined;
    }, 30_000, 200);
    expect((await transaction('by-hand-2')).status).toBe('active');

    await startWallet();
    await untilStatus('by-hand-2', 'committed', 30_000);
    expect(await balances()).toEqual({ alice: { balance: 80, frozen: 0 }, bob: { balance: 20, frozen: 0 } });
  });
});
