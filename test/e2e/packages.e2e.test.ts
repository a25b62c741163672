/**
 * The packages as a team installs them: `npm pack` the three workspaces, install the tarballs
 * into a NestJS app laid out as `nest new` lays one out (CommonJS TypeScript, test/consumer-app)
 * in a temporary folder outside the repository, compile it with its own tsconfig against the
 * public names only, start the coordinator with `npx nest-dtx start`, and commit a TCC and a
 * saga through the app's participant, on Express and then on Fastify. The same app is built a
 * second time against the lowest peers the SDK declares (NestJS 11, TypeORM 0.3).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppProcess, PACKAGES, ROOT_MANIFEST, npmInstall, packWorkspaces, rootVersions, tarballPath, tarballSpec, type PackageName } from '../../scripts/lib/packed-packages.js';
import { ROOT, freePort, until } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { readWallets, type WalletRow } from '../support/wallets.js';

const run = promisify(execFile);
const workDir = mkdtempSync(join(tmpdir(), 'dtx-consumer-'));
const packDir = join(workDir, 'packs');

/** One installed and compiled copy of test/consumer-app, with the wallet database its participant uses. */
interface ConsumerApp {
  dir: string;
  db: TestDatabase;
}

const processes: AppProcess[] = [];
let coordinatorDb: TestDatabase;
let coordinatorUrl: string;
/** The app on the monorepo's own NestJS and TypeORM, with the coordinator package installed too. */
let current: ConsumerApp;
/** The app on NestJS 11 and TypeORM 0.3. */
let nest11: ConsumerApp;

async function waitUntilAnswering(process: AppProcess, url: string): Promise<void> {
  await until(
    `${process.name} to answer at ${url}`,
    async () => {
      if (!process.alive) throw new Error(`${process.name} exited:\n${process.log}`);
      return (await fetch(url).catch(() => null))?.ok ? true : undefined;
    },
    60_000,
    200,
  );
}

const walletBalances = (app: ConsumerApp): Promise<Record<string, WalletRow>> => readWallets(app.db.url);

/** Starts the app's participant on the given HTTP adapter and waits until it has registered. */
async function startWallet(app: ConsumerApp, adapter: 'express' | 'fastify'): Promise<{ process: AppProcess; url: string }> {
  const port = await freePort();
  const wallet = new AppProcess(`wallet-${adapter}`, app.dir, process.execPath, ['dist/main.js'], {
    PORT: String(port),
    HTTP_ADAPTER: adapter,
    COORDINATOR_URL: coordinatorUrl,
    DATABASE_URL: app.db.url,
  });
  processes.push(wallet);
  await until(
    `wallet on ${adapter} to register`,
    async () => {
      if (!wallet.alive) throw new Error(`wallet on ${adapter} exited:\n${wallet.log}`);
      const participants = (await (await fetch(`${coordinatorUrl}/v1/participants`)).json()) as { name: string; endpoint?: string }[];
      return participants.some((p) => p.name === 'wallet' && p.endpoint === `http://127.0.0.1:${port}/tx`) ? true : undefined;
    },
    60_000,
    200,
  );
  return { process: wallet, url: `http://127.0.0.1:${port}` };
}

/** A phase call straight to the participant, without the coordinator's signature. */
async function forgedCredit(walletUrl: string): Promise<{ status: number; error: string }> {
  const call = { gid: `forged-${Date.now()}`, branchId: 'b1', action: 'credit', phase: 'confirm', mode: 'tcc', payload: { wallet: 'carol', amount: 1000 } };
  const answer = await fetch(`${walletUrl}/tx/credit/confirm`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(call) });
  return { status: answer.status, error: ((await answer.json()) as { error: string }).error };
}

/** The app's client (dist/transfer.js): a TCC of `amount` from alice to bob, then a saga of 1 from bob to carol. */
async function transfer(app: ConsumerApp, amount: number): Promise<{ participants: string[]; tcc: string; saga: string }> {
  const { stdout } = await run(process.execPath, ['dist/transfer.js'], { cwd: app.dir, env: { ...process.env, COORDINATOR_URL: coordinatorUrl, AMOUNT: String(amount) } });
  return JSON.parse(stdout) as { participants: string[]; tcc: string; saga: string };
}

/**
 * Copies test/consumer-app to `name` in the work folder, writes its package.json (the tarballs
 * of `packages` plus `dependencies`), installs it from the registry (npm's cache first) and
 * compiles it with its own tsconfig; gives it a fresh database with the wallets table's rows.
 */
async function prepareApp(name: string, packages: readonly PackageName[], dependencies: Record<string, string>): Promise<ConsumerApp> {
  const dir = join(workDir, name);
  cpSync(join(ROOT, 'test/consumer-app'), dir, { recursive: true });
  const manifest = {
    name: `consumer-${name}`,
    version: '0.0.1',
    private: true,
    license: 'UNLICENSED',
    scripts: { build: 'tsc -p tsconfig.build.json', start: 'node dist/main.js' },
    dependencies: { ...Object.fromEntries(packages.map((pkg) => [pkg, tarballSpec(packDir, pkg)])), ...dependencies },
    devDependencies: { '@types/node': ROOT_MANIFEST.devDependencies['@types/node'], typescript: ROOT_MANIFEST.devDependencies.typescript },
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  await npmInstall(dir);
  await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: dir });
  return { dir, db: await createTestDatabase(`dtx_consumer_${name}`) };
}

const APP_DEPENDENCIES = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', '@nestjs/platform-fastify', '@nestjs/typeorm', 'pg', 'reflect-metadata', 'rxjs', 'typeorm'];

beforeAll(async () => {
  mkdirSync(packDir);
  await packWorkspaces(packDir);
  current = await prepareApp('current', PACKAGES, rootVersions(APP_DEPENDENCIES));
  nest11 = await prepareApp('nest11', ['@nest-dtx/protocol', '@nest-dtx/sdk'], {
    ...rootVersions(['pg', 'reflect-metadata', 'rxjs']),
    '@nestjs/common': '^11.0.0',
    '@nestjs/core': '^11.0.0',
    '@nestjs/platform-express': '^11.0.0',
    '@nestjs/platform-fastify': '^11.0.0',
    '@nestjs/typeorm': '^11.0.0',
    typeorm: '^0.3.20',
  });

  coordinatorDb = await createTestDatabase('dtx_consumer_coordinator');
  const port = await freePort();
  coordinatorUrl = `http://127.0.0.1:${port}`;
  const coordinator = new AppProcess('npx nest-dtx start', current.dir, 'npx', ['nest-dtx', 'start'], {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: coordinatorDb.url,
  });
  processes.push(coordinator);
  await waitUntilAnswering(coordinator, `${coordinatorUrl}/health/ready`);
}, 600_000);

// The work folder holds whole installs (hundreds of MB): removing it took 84 s on a loaded 2-core box.
afterAll(async () => {
  for (const process of processes.reverse()) await process.stop();
  await current?.db.drop();
  await nest11?.db.drop();
  await coordinatorDb?.drop();
  rmSync(workDir, { recursive: true, force: true });
}, 300_000);

describe('the published packages in a new NestJS app', () => {
  it('packs each package with typings and only its public files', async () => {
    for (const name of PACKAGES) {
      const { stdout } = await run('tar', ['tzf', tarballPath(packDir, name)]);
      const files = stdout.split('\n').filter(Boolean);
      expect(files.some((file) => file.endsWith('.spec.js'))).toBe(false);
      if (name !== '@nest-dtx/coordinator') expect(files).toContain('package/dist/index.d.ts');
    }
    const { stdout } = await run('tar', ['tzf', tarballPath(packDir, '@nest-dtx/coordinator')]);
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['package/dist/cli/main.js', 'package/openapi.json', 'package/console/index.html']));
  });

  it('ships every file the SDK\'s exports name: the main entry and each data layer\'s subpath, with typings', async () => {
    const { stdout } = await run('tar', ['tzf', tarballPath(packDir, '@nest-dtx/sdk')]);
    const files = new Set(stdout.split('\n').filter(Boolean));
    const manifest = JSON.parse(readFileSync(join(ROOT, 'libs/sdk/package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };
    const targets = Object.values(manifest.exports).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target)));
    expect(Object.keys(manifest.exports)).toEqual(expect.arrayContaining(['./typeorm', './pg', './mysql2', './prisma', './drizzle', './kysely', './mikro-orm', './redis']));
    expect(targets.filter((target) => !files.has(`package/${target.replace(/^\.\//, '')}`))).toEqual([]);
  });

  it('loads the data layers an app has the libraries of (TypeORM, pg) from their subpaths, from CommonJS and ESM', async () => {
    const names = { '@nest-dtx/sdk/typeorm': 'typeormDataLayer', '@nest-dtx/sdk/pg': 'pgDataLayer' };
    for (const [subpath, factory] of Object.entries(names)) {
      const required = await run(process.execPath, ['-e', `console.log(typeof require('${subpath}').${factory})`], { cwd: current.dir });
      expect(required.stdout.trim()).toBe('function');
      const imported = await run(process.execPath, ['--input-type=module', '-e', `console.log(typeof (await import('${subpath}')).${factory})`], { cwd: current.dir });
      expect(imported.stdout.trim()).toBe('function');
    }
  });

  it('loads each library package on its own, from CommonJS and from ESM, with nothing loaded before it', async () => {
    for (const name of ['@nest-dtx/protocol', '@nest-dtx/sdk']) {
      const required = await run(process.execPath, ['-e', `const m = require('${name}'); console.log(Object.keys(m).length)`], { cwd: current.dir });
      expect(Number(required.stdout)).toBeGreaterThan(5);
      const imported = await run(process.execPath, ['--input-type=module', '-e', `const m = await import('${name}'); console.log(Object.keys(m).length)`], { cwd: current.dir });
      expect(imported.stdout).toBe(required.stdout);
    }
    // The SDK's public names, exactly those an outside check relies on.
    const { stdout } = await run(process.execPath, ['-e', `console.log(Object.keys(require('@nest-dtx/sdk')).sort().join(','))`], { cwd: current.dir });
    expect(stdout.trim().split(',')).toEqual(
      expect.arrayContaining(['DtxParticipantModule', 'TransactionParticipant', 'TccAction', 'SagaAction', 'TwoPhaseAction', 'XaAction', 'BusinessFailure', 'TransactionClient', 'dtxMigrations']),
    );
  });

  it('ships the OpenAPI document the running coordinator serves', async () => {
    // The same bytes: the coordinator serves the committed file, whatever @nestjs/swagger this install resolved.
    const shippedBytes = readFileSync(join(current.dir, 'node_modules/@nest-dtx/coordinator/openapi.json'));
    const servedBytes = Buffer.from(await (await fetch(`${coordinatorUrl}/docs-json`)).arrayBuffer());
    expect(servedBytes.equals(shippedBytes)).toBe(true);
    expect(shippedBytes.equals(readFileSync(join(ROOT, 'apps/coordinator/openapi.json')))).toBe(true);
    const shipped = JSON.parse(shippedBytes.toString('utf8')) as { paths: Record<string, unknown> };
    expect(Object.keys(shipped.paths)).toEqual(expect.arrayContaining(['/v1/transactions', '/v1/participants', '/admin/transactions']));
  });

  it('commits a TCC and a saga through a participant on Express, then on Fastify', async () => {
    await transfersOnExpressThenFastify(current);
  });

  it('does the same built against NestJS 11 and TypeORM 0.3, the lowest peers the SDK declares', async () => {
    const versions = ['@nestjs/common', '@nestjs/core', 'typeorm'].map(
      (name) => (JSON.parse(readFileSync(join(nest11.dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version.split('.')[0],
    );
    expect(versions).toEqual(['11', '11', '0']);
    await transfersOnExpressThenFastify(nest11);
  });
});

/** The scenario both apps run: transfers through the app's participant on Express, then on Fastify. */
async function transfersOnExpressThenFastify(app: ConsumerApp): Promise<void> {
  const express = await startWallet(app, 'express');
  const client = new pg.Client({ connectionString: app.db.url });
  await client.connect();
  await client.query(`INSERT INTO wallets (id, balance) VALUES ('alice', 100), ('bob', 0), ('carol', 0)`);
  await client.end();

  expect(await transfer(app, 30)).toEqual({ participants: ['wallet'], tcc: 'committed', saga: 'committed' });
  expect(await walletBalances(app)).toEqual({ alice: { balance: 70, frozen: 0 }, bob: { balance: 29, frozen: 0 }, carol: { balance: 1, frozen: 0 } });

  // More than alice has: the TCC rolls back (the saga, 1 from bob, still commits).
  expect(await transfer(app, 500)).toEqual({ participants: ['wallet'], tcc: 'rolled_back', saga: 'committed' });
  expect(await walletBalances(app)).toEqual({ alice: { balance: 70, frozen: 0 }, bob: { balance: 28, frozen: 0 }, carol: { balance: 2, frozen: 0 } });
  // A call without the coordinator's signature is refused and changes nothing.
  expect(await forgedCredit(express.url)).toEqual({ status: 401, error: 'SIGNATURE_MISSING' });
  await express.process.stop();

  const fastify = await startWallet(app, 'fastify');
  expect(await transfer(app, 20)).toEqual({ participants: ['wallet'], tcc: 'committed', saga: 'committed' });
  expect(await walletBalances(app)).toEqual({ alice: { balance: 50, frozen: 0 }, bob: { balance: 47, frozen: 0 }, carol: { balance: 3, frozen: 0 } });
  expect(await forgedCredit(fastify.url)).toEqual({ status: 401, error: 'SIGNATURE_MISSING' });
  expect(await walletBalances(app)).toEqual({ alice: { balance: 50, frozen: 0 }, bob: { balance: 47, frozen: 0 }, carol: { balance: 3, frozen: 0 } });
  await fastify.process.stop();
}
