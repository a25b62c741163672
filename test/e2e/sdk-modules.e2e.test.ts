/**
 * The SDK's modules as a team assembles them, against a real coordinator process: forRootAsync
 * (useFactory, useClass) over TCP and Redis with nothing about the transport declared up front;
 * the same participant on Express and on Fastify; the barrier in a named TypeORM DataSource;
 * the Terminus health indicator; isGlobal; a barrier table dropped under a running participant.
 */
import { randomBytes } from 'node:crypto';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callId, signCall, SIGNATURE_HEADERS, type PhaseCallBody, type TransactionDetailView } from '@nest-dtx/protocol';
import {
  barrierTableDdl,
  BranchBarrier,
  DtxClientModule,
  DtxParticipantHealthIndicator,
  TransactionClient,
  type DtxClientOptionsFactory,
  type ParticipantModuleOptions,
  type TransactionClientOptions,
} from '@nest-dtx/sdk';
import { SigningKeys } from '../../libs/sdk/src/participant/signing-keys.js';
import { coordinator, getJson, REDIS_URL, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';
import { freePort, LEDGER_DDL, startApp, type StartedApp } from '../support/signed-participant.js';
import { participantModule, Wallet, WalletApp, WalletHealthModule, type Configured } from '../support/wallet-participant.js';

const run = randomBytes(3).toString('hex');
const databases: TestDatabase[] = [];
const dataSources: DataSource[] = [];
const started: StartedApp[] = [];
let coord: CoordinatorHandle;
let client: TransactionClient;

/** A fresh participant database (barrier and ledger tables), kept for cleanup. */
async function walletDatabase(prefix: string): Promise<{ url: string; dataSource: DataSource }> {
  const { db, dataSource } = await participantDatabase(prefix, [LEDGER_DDL]);
  databases.push(db);
  dataSources.push(dataSource);
  return { url: db.url, dataSource };
}

async function ledgerOf(dataSource: DataSource, gid: string): Promise<string[]> {
  const rows: { phase: string }[] = await dataSource.query(`SELECT phase FROM ledger WHERE gid = $1 ORDER BY id`, [gid]);
  return rows.map((row) => row.phase);
}

async function start(...args: Parameters<typeof startApp>): Promise<StartedApp> {
  const app = await startApp(...args);
  started.push(app);
  return app;
}

/** Options of a wallet registering with the test's coordinator over `transport`. */
async function walletOptions(name: string, transport: 'http' | 'tcp' | 'redis', httpPort: number): Promise<ParticipantModuleOptions> {
  const base = { name, coordinatorUrl: coord.url, publicUrl: `http://127.0.0.1:${httpPort}`, registerWaitMs: 10_000 };
  switch (transport) {
    case 'http':
      return base;
    case 'tcp':
      return { ...base, transport: { kind: 'tcp', host: '127.0.0.1', port: await freePort() } };
    case 'redis':
      return { ...base, transport: { kind: 'redis', url: REDIS_URL } };
  }
}

const holdTcc = (participant: string, gid: string) =>
  client.begin({ mode: 'tcc', gid, wait: true, branches: [{ participant, action: 'hold', payload: { amount: 3 } }] });

beforeAll(async () => {
  const db = await createTestDatabase('sdkmod_coord');
  databases.push(db);
  coord = await coordinator(`sdkmod-coordinator-${run}`, db.url, { REDIS_URL, RETRY_BASE_MS: '50', RETRY_MAX_MS: '500', RECOVERY_INTERVAL_MS: '200' });
  await coord.start();
  client = new TransactionClient({ coordinatorUrl: coord.url });
});

afterAll(async () => {
  for (const app of started.reverse()) await app.app.close().catch(() => undefined);
  await coord?.process.kill();
  await Promise.all(dataSources.map((d) => d.destroy()));
  await Promise.all(databases.map((d) => d.drop()));
});

describe.each<{ configured: Configured; transport: 'tcp' | 'redis' }>([
  { configured: 'useFactory', transport: 'tcp' },
  { configured: 'useFactory', transport: 'redis' },
  { configured: 'useClass', transport: 'tcp' },
  { configured: 'useClass', transport: 'redis' },
])('forRootAsync with $configured over $transport', ({ configured, transport }) => {
  it('registers from the options the factory returned and commits a TCC', async () => {
    const { url, dataSource } = await walletDatabase(`sdkmod_${transport}`);
    const name = `wallet-${configured.toLowerCase()}-${transport}-${run}`;
    const port = await freePort();
    const options = await walletOptions(name, transport, port);
    const app = await start(WalletApp.with(participantModule(configured, options), { default: url }), { port });
    const registered = (await client.listParticipants()).find((p) => p.name === name);
    expect(registered).toMatchObject({ transport, ...(transport === 'tcp' ? { host: '127.0.0.1', port: (options.transport as { port: number }).port } : {}) });

    const gid = `sdkmod-${configured}-${transport}-${run}`;
    const view = await holdTcc(name, gid);
    expect(view.status).toBe('committed');
    expect(await ledgerOf(dataSource, gid)).toEqual(['try', 'confirm']);
    expect(app.app.get(Wallet).calls).toEqual([`${gid}/try`, `${gid}/confirm`]);
  });
});

describe.each(['express', 'fastify'] as const)('an HTTP participant on %s', (platform) => {
  let app: StartedApp;
  let dataSource: DataSource;
  const name = `wallet-${platform}-${run}`;
  const gid = (what: string) => `sdkmod-${platform}-${what}-${run}`;
  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  beforeAll(async () => {
    let url: string;
    ({ url, dataSource } = await walletDatabase(`sdkmod_${platform}`));
    const port = await freePort();
    app = await start(WalletApp.with(participantModule('useFactory', await walletOptions(name, 'http', port)), { default: url }), { port, platform });
  });

  it('commits a TCC', async () => {
    const view = await holdTcc(name, gid('tcc'));
    expect(view.status).toBe('committed');
    expect(view.branches[0]).toMatchObject({ status: 'committed' });
    expect(await ledgerOf(dataSource, gid('tcc'))).toEqual(['try', 'confirm']);
  });

  it('commits a saga, keeping the string result a JSON string', async () => {
    const view = await client.begin({ mode: 'saga', gid: gid('saga'), wait: true, steps: [{ name: 'pay', participant: name, action: 'pay', payload: { amount: 4 } }] });
    expect(view.status).toBe('committed');
    expect(view.branches[0]).toMatchObject({ status: 'committed', result: '42' });
    expect(await ledgerOf(dataSource, gid('saga'))).toEqual(['execute']);
  });

  it('answers a signed call whose action returned nothing with the JSON null, and "42" as a JSON string', async () => {
    const keys = app.app.get(SigningKeys, { strict: false }).current();
    const signed = (call: PhaseCallBody) => {
      const body = JSON.stringify(call);
      return { body, headers: { ...signCall(keys, callId(call), Math.floor(Date.now() / 1000), body) } as Record<string, string> };
    };
    const hold = signed({ gid: gid('direct'), branchId: 'b1', mode: 'tcc', action: 'hold', phase: 'try', payload: { amount: 1 } });
    const held = await post('/tx/hold/try', hold.body, hold.headers);
    expect({ status: held.status, type: held.headers.get('content-type'), text: await held.text() }).toEqual({ status: 200, type: 'application/json; charset=utf-8', text: 'null' });
    const pay = signed({ gid: gid('direct'), branchId: 'b2', mode: 'saga', action: 'pay', phase: 'execute', payload: { amount: 1 } });
    const paid = await post('/tx/pay/execute', pay.body, pay.headers);
    expect({ status: paid.status, text: await paid.text() }).toEqual({ status: 200, text: '"42"' });
  });

  it('answers a forged call 401 SIGNATURE_INVALID and runs nothing', async () => {
    const call = { gid: gid('forged'), branchId: 'b1', mode: 'tcc', action: 'hold', phase: 'try', payload: { amount: 9 } };
    const forged = {
      [SIGNATURE_HEADERS.id]: `${gid('forged')}/b1/try`,
      [SIGNATURE_HEADERS.timestamp]: String(Math.floor(Date.now() / 1000)),
      [SIGNATURE_HEADERS.signature]: `v1,${randomBytes(32).toString('base64')}`,
    };
    const answer = await post('/tx/hold/try', JSON.stringify(call), forged);
    expect(answer.status).toBe(401);
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await answer.json()).toEqual({ statusCode: 401, error: 'SIGNATURE_INVALID', message: expect.any(String) });
    expect(await ledgerOf(dataSource, gid('forged'))).toEqual([]);
    // Nor did it reach the barrier.
    expect(await dataSource.query(`SELECT count(*)::int AS n FROM dtx_barrier WHERE gid = $1`, [gid('forged')])).toEqual([{ n: 0 }]);
  });
});

describe.each(['http', 'tcp'] as const)('a participant whose barrier table is dropped after start, over %s', (transport) => {
  it('answers 503 DTX_SCHEMA_MISSING naming the table and the migration; the coordinator records that answer for each call and retries; the transaction finishes once the table is back', async () => {
    const { url, dataSource } = await walletDatabase(`sdkmod_schema_${transport}`);
    const name = `wallet-schema-${transport}-${run}`;
    const port = await freePort();
    const options = await walletOptions(name, transport, port);
    const app = await start(WalletApp.with(participantModule('forRoot', options, { isGlobal: true }), { default: url }, { imports: [WalletHealthModule] }), { port });
    await dataSource.query('DROP TABLE dtx_barrier');
    const body = {
      statusCode: 503,
      error: 'DTX_SCHEMA_MISSING',
      message: `table dtx_barrier is missing in database ${new URL(url).pathname.slice(1)}: add ...dtxMigrations to the DataSource's migrations and run them`,
    };

    // The try fails transiently: the coordinator decides to roll back, and the cancel fails the same way, retried.
    const gid = `sdkmod-schema-${transport}-${run}`;
    await client.begin({ mode: 'tcc', gid, branches: [{ participant: name, action: 'hold', payload: { amount: 3 } }] });
    const answered = transport === 'http' ? `HTTP 503: ${JSON.stringify(body)}` : JSON.stringify(body);
    // Every call's answer is in the history (the branch's lastError is the latest; once the
    // coordinator's circuit breaker opens, calls between its probes are "not called").
    const calls = await until('the cancel to be retried', async () => {
      const detail = await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/${gid}`);
      const failed = detail.events.filter((event) => event.type === 'call' && (event.detail as { error?: unknown }).error === answered);
      return detail.status === 'rolling_back' && failed.length >= 3 ? failed.map((event) => (event.detail as { phase: string }).phase) : undefined;
    });
    expect(calls.slice(0, 3)).toEqual(['try', 'cancel', 'cancel']);
    // Said once, not per call.
    expect(app.logger.lines.filter((line) => line.message.startsWith('calls fail:'))).toEqual([
      { level: 'error', message: `calls fail: ${body.message} (answered 503 DTX_SCHEMA_MISSING until it is there)` },
    ]);
    const down = await fetch(`${app.url}/health`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ error: { dtx: { status: 'down', participant: name, reason: body.message } } });
    if (transport === 'http') {
      // The answer itself, to a call signed as the coordinator signs it.
      const call: PhaseCallBody = { gid: `${gid}-direct`, branchId: 'b1', mode: 'tcc', action: 'hold', phase: 'try', payload: { amount: 1 } };
      const signed = JSON.stringify(call);
      const keys = app.app.get(SigningKeys, { strict: false }).current();
      const answer = await fetch(`${app.url}/tx/hold/try`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signCall(keys, callId(call), Math.floor(Date.now() / 1000), signed) },
        body: signed,
      });
      expect({ status: answer.status, body: await answer.json() }).toEqual({ status: 503, body });
    }

    // The migration runs again (here: its DDL): the next retry goes through.
    for (const ddl of barrierTableDdl('postgres')) await dataSource.query(ddl);
    const done = await until('the rollback to finish', async () => {
      const view = await client.get(gid);
      return view.status === 'rolled_back' ? view : undefined;
    });
    expect(done.branches[0]).toMatchObject({ status: 'rolled_back' });
    expect(await ledgerOf(dataSource, gid)).toEqual([]);
    expect((await fetch(`${app.url}/health`)).status).toBe(200);
  });
});

describe('the dataSource option', () => {
  it('keeps the barrier and the business in the named DataSource while the default one points elsewhere', async () => {
    const barrier = await walletDatabase('sdkmod_named');
    // The default DataSource's database has neither the barrier nor the ledger table.
    const other = await createTestDatabase('sdkmod_default');
    databases.push(other);
    const name = `wallet-named-${run}`;
    const port = await freePort();
    const options = { ...(await walletOptions(name, 'tcp', port)), dataSource: 'barrier' };
    const app = await start(WalletApp.with(participantModule('useFactory', options), { default: other.url, named: { name: 'barrier', url: barrier.url } }), { port });
    const gid = `sdkmod-named-${run}`;
    expect((await holdTcc(name, gid)).status).toBe('committed');
    expect(await ledgerOf(barrier.dataSource, gid)).toEqual(['try', 'confirm']);
    const rows: { phase: string }[] = await barrier.dataSource.query(`SELECT phase FROM dtx_barrier WHERE gid = $1 ORDER BY phase`, [gid]);
    expect(rows.map((row) => row.phase)).toEqual(['commit', 'phase1']);
    const defaultTables = new pg.Client({ connectionString: other.url });
    await defaultTables.connect();
    try {
      expect((await defaultTables.query(`SELECT to_regclass('dtx_barrier') AS t`)).rows[0].t).toBeNull();
    } finally {
      await defaultTables.end();
    }
    expect(app.app.get(BranchBarrier, { strict: false })).toBeInstanceOf(BranchBarrier);
  });

  it('works with no default DataSource at all', async () => {
    const barrier = await walletDatabase('sdkmod_only_named');
    const name = `wallet-only-named-${run}`;
    const port = await freePort();
    const options = { ...(await walletOptions(name, 'http', port)), dataSource: 'ledger' };
    await start(WalletApp.with(participantModule('forRoot', options), { named: { name: 'ledger', url: barrier.url } }), { port });
    const gid = `sdkmod-only-named-${run}`;
    expect((await holdTcc(name, gid)).status).toBe('committed');
    expect(await ledgerOf(barrier.dataSource, gid)).toEqual(['try', 'confirm']);
  });

  it('refuses to start, in one line, when no DataSource has that name', async () => {
    const barrier = await walletDatabase('sdkmod_misnamed');
    const options = { name: `wallet-misnamed-${run}`, coordinatorUrl: coord.url, publicUrl: 'http://127.0.0.1:1', register: false, verifySignatures: false, dataSource: 'nope' };
    await expect(NestFactory.create(WalletApp.with(participantModule('forRoot', options), { default: barrier.url }), { logger: false, abortOnError: false })).rejects.toThrow(
      `participant wallet-misnamed-${run}: the TypeORM DataSource nope is not in the app (the barrier needs TypeOrmModule.forRoot({ name: 'nope', ... }), or a dataLayer option)`,
    );
  });
});

describe('health and isGlobal', () => {
  let healthCoord: CoordinatorHandle;

  beforeAll(async () => {
    const db = await createTestDatabase('sdkmod_health_coord');
    databases.push(db);
    healthCoord = await coordinator(`sdkmod-health-coordinator-${run}`, db.url);
    await healthCoord.start();
  });

  afterAll(async () => {
    await healthCoord?.process.kill();
  });

  it('the health route (in a module of its own: DtxParticipantModule is global) is up while registered, 503 down once the coordinator is gone', async () => {
    const { url } = await walletDatabase('sdkmod_health');
    const name = `wallet-health-${run}`;
    const port = await freePort();
    const options = { name, coordinatorUrl: healthCoord.url, publicUrl: `http://127.0.0.1:${port}` };
    const app = await start(WalletApp.with(participantModule('useClass', options, { isGlobal: true }), { default: url }, { imports: [WalletHealthModule] }), { port });
    const up = await fetch(`${app.url}/health`);
    expect(up.status).toBe(200);
    expect(await up.json()).toMatchObject({ status: 'ok', info: { dtx: { status: 'up', participant: name } } });

    await healthCoord.process.kill();
    const down = await fetch(`${app.url}/health`);
    expect(down.status).toBe(503);
    const body = (await down.json()) as { status: string; error: { dtx: { status: string; reason: string } } };
    expect(body).toMatchObject({ status: 'error', error: { dtx: { status: 'down', participant: name } } });
    expect(body.error.dtx.reason).toMatch(/^coordinator unreachable at http:\/\/127\.0\.0\.1:\d+/);
  });

  it('is down while the participant is not registered', async () => {
    const { url } = await walletDatabase('sdkmod_unregistered');
    // Nothing listens at this coordinator URL: the registration keeps failing in the background.
    const options = { name: `wallet-unregistered-${run}`, coordinatorUrl: `http://127.0.0.1:${await freePort()}`, publicUrl: 'http://127.0.0.1:1', registerWaitMs: 100 };
    const app = await start(WalletApp.with(participantModule('forRoot', options, { isGlobal: true }), { default: url }, { imports: [WalletHealthModule] }));
    const answer = await fetch(`${app.url}/health`);
    expect(answer.status).toBe(503);
    expect(await answer.json()).toMatchObject({ error: { dtx: { status: 'down' } } });
    const direct = await app.app.get(DtxParticipantHealthIndicator, { strict: false }).isHealthy('participant');
    expect(Object.keys(direct)).toEqual(['participant']);
    expect(direct.participant.status).toBe('down');
  });

  it('without isGlobal, a module that does not import DtxParticipantModule cannot inject what it exports', async () => {
    const { url } = await walletDatabase('sdkmod_not_global');
    const options = { name: `wallet-not-global-${run}`, coordinatorUrl: coord.url, publicUrl: 'http://127.0.0.1:1', register: false, verifySignatures: false };
    await expect(
      NestFactory.create(WalletApp.with(participantModule('forRoot', options), { default: url }, { imports: [WalletHealthModule] }), { logger: false, abortOnError: false }),
    ).rejects.toThrow(/DtxParticipantHealthIndicator/);
  });

  it('DtxClientModule.forRootAsync (useClass) is global by default and local with isGlobal: false', async () => {
    @Injectable()
    class ClientOptions implements DtxClientOptionsFactory {
      createDtxClientOptions(): TransactionClientOptions {
        return { coordinatorUrl: coord.url };
      }
    }
    @Injectable()
    class Transfers {
      constructor(readonly client: TransactionClient) {}
    }
    @Module({ providers: [Transfers] })
    class TransfersModule {}

    const globalApp = await NestFactory.createApplicationContext(
      { module: class GlobalClientApp {}, imports: [DtxClientModule.forRootAsync({ useClass: ClientOptions }), TransfersModule] },
      { logger: false, abortOnError: false },
    );
    try {
      const transfers = globalApp.get(Transfers, { strict: false });
      expect((await transfers.client.listParticipants()).length).toBeGreaterThan(0);
    } finally {
      await globalApp.close();
    }
    await expect(
      NestFactory.createApplicationContext(
        { module: class LocalClientApp {}, imports: [DtxClientModule.forRootAsync({ useClass: ClientOptions, isGlobal: false }), TransfersModule] },
        { logger: false, abortOnError: false },
      ),
    ).rejects.toThrow(/TransactionClient/);
    const local = await NestFactory.createApplicationContext(
      { module: class LocalClientOnly {}, imports: [DtxClientModule.forRoot({ coordinatorUrl: coord.url, isGlobal: false })] },
      { logger: false, abortOnError: false },
    );
    expect(local.get(TransactionClient, { strict: false })).toBeInstanceOf(TransactionClient);
    await local.close();
  });
});
