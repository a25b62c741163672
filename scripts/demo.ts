/**
 * The demos. `npm run demo` is the bank transfer; `npm run demo -- purchase` the purchase demo
 * (scripts/purchase-demo.ts); `npm run demo -- polyglot` the transfers over Postgres, MariaDB
 * and Redis (scripts/polyglot-demo.ts); `npm run demo -- outbox` the order service's messages
 * over HTTP, RabbitMQ and NATS (scripts/outbox-demo.ts); `npm run demo -- at` the bank transfer in AT
 * mode, with no compensation code (scripts/at-demo.ts); `npm run demo -- workflow` an order placed
 * as a workflow, with long-running steps, a person's approval and kill -9 of its host and of the
 * coordinator (scripts/workflow-demo.ts). The bank-transfer demo: Starts an embedded Postgres, the coordinator and two
 * account services (bank A and bank B, separate databases), runs transfers from A to B through
 * the coordinator, including a refusal, a participant killed after try and a coordinator killed
 * after the commit decision, then checks that money was conserved. Exits non-zero if not.
 */
import pg from 'pg';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../apps/coordinator/src/database/embedded-postgres.js';
import {
  LOG_DIR,
  ROOT,
  accountService,
  accountsOf,
  DEMO_RECOVERY_ENV,
  coordinator,
  freePort,
  generateApiKeys,
  openAccount,
  finished,
  killCoordinatorAfterDecision,
  printTable,
  sleep,
  type AccountHandle,
  type CoordinatorHandle,
} from './lib/stack.js';
import { runAtDemo } from './at-demo.js';
import { runOutboxDemo } from './outbox-demo.js';
import { runPolyglotDemo } from './polyglot-demo.js';
import { runPurchaseDemo } from './purchase-demo.js';
import { runWorkflowDemo, WORKFLOW_DEMO_DATABASES } from './workflow-demo.js';

const money = (cents: number) => (cents / 100).toFixed(2);

interface Row {
  transfer: string;
  gid: string;
  outcome: string;
  aBefore: number;
  aAfter: number;
  bBefore: number;
  bAfter: number;
}

async function recreateDatabases(server: RunningEmbeddedPostgres, names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    for (const name of names) {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${name}"`);
    }
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  const stoppers: (() => Promise<void>)[] = [];
  try {
    console.log('Starting the embedded Postgres (first run initialises it)...');
    const db = await startEmbeddedPostgres({ dataDir: `${ROOT}/.data/demo-postgres`, port: await freePort() });
    stoppers.push(() => db.stop());
    if (process.argv.includes('workflow')) {
      await recreateDatabases(db, WORKFLOW_DEMO_DATABASES);
      const ok = await runWorkflowDemo(db, stoppers);
      console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. Process logs: ${LOG_DIR}`);
      return ok ? 0 : 1;
    }
    if (process.argv.includes('polyglot')) {
      await recreateDatabases(db, ['demo_coordinator', 'demo_bank_a']);
      const ok = await runPolyglotDemo(db, stoppers);
      console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
      return ok ? 0 : 1;
    }
    if (process.argv.includes('outbox')) {
      await recreateDatabases(db, ['demo_coordinator', 'demo_order', 'demo_inventory', 'demo_events']);
      const ok = await runOutboxDemo(db, stoppers);
      console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
      return ok ? 0 : 1;
    }
    if (process.argv.includes('at')) {
      await recreateDatabases(db, ['demo_coordinator', 'demo_bank_a', 'demo_bank_b']);
      const ok = await runAtDemo(db, stoppers);
      console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. Process logs: ${LOG_DIR}`);
      return ok ? 0 : 1;
    }
    if (process.argv.includes('purchase')) {
      await recreateDatabases(db, ['demo_coordinator', 'demo_order', 'demo_inventory', 'demo_account']);
      const ok = await runPurchaseDemo(db, stoppers);
      console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. Process logs: ${LOG_DIR}`);
      return ok ? 0 : 1;
    }
    await recreateDatabases(db, ['demo_coordinator', 'demo_bank_a', 'demo_bank_b']);

    // Run as a deployment should: API keys per role (fresh each run), the banks register with
    // the participant key and the transfers go out with the client key.
    const keys = generateApiKeys();
    // Short retry and lease times so recovery is visible within seconds.
    const coord: CoordinatorHandle = await coordinator('demo-coordinator', db.urlFor('demo_coordinator'), { API_KEYS: keys.API_KEYS, ...DEMO_RECOVERY_ENV });
    stoppers.push(() => coord.process.kill());
    console.log(`Starting the coordinator on ${coord.url}...`);
    await coord.start();

    const bankA: AccountHandle = await accountService('bank-a', db.urlFor('demo_bank_a'), coord.url, 'http', keys.participant);
    const bankB: AccountHandle = await accountService('bank-b', db.urlFor('demo_bank_b'), coord.url, 'http', keys.participant);
    stoppers.push(() => bankA.process.kill(), () => bankB.process.kill());
    console.log('Starting bank A and bank B...');
    await Promise.all([bankA.start(), bankB.start()]);

    await openAccount(bankA, 'alice', 100_000);
    await openAccount(bankA, 'carol', 5_000);
    await openAccount(bankB, 'bob', 0);
    await openAccount(bankB, 'dave', 0);

    const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
    const rows: Row[] = [];
    const initialTotal = (await accountsOf(bankA)).totalBalance + (await accountsOf(bankB)).totalBalance;

    const transfer = async (label: string, run: () => Promise<TransactionView>): Promise<TransactionView> => {
      const aBefore = (await accountsOf(bankA)).totalBalance;
      const bBefore = (await accountsOf(bankB)).totalBalance;
      const view = await run();
      rows.push({
        transfer: label,
        gid: view.gid,
        outcome: view.reason ? `${view.status} (${view.reason})` : view.status,
        aBefore,
        aAfter: (await accountsOf(bankA)).totalBalance,
        bBefore,
        bAfter: (await accountsOf(bankB)).totalBalance,
      });
      return view;
    };
    const branches = (from: string, to: string, amount: number) => [
      { participant: 'bank-a', action: 'debit', payload: { accountId: from, amount } },
      { participant: 'bank-b', action: 'credit', payload: { accountId: to, amount } },
    ];

    console.log('Running transfers...');
    await transfer('alice -> bob 250.00 (one-shot)', () =>
      client.begin({ mode: 'tcc', gid: 'demo-1', wait: true, branches: branches('alice', 'bob', 25_000) }),
    );
    await transfer('alice -> dave 100.00 (interactive)', () =>
      client.tcc(async (tx) => {
        await tx.branch('bank-a', 'debit', { accountId: 'alice', amount: 10_000 });
        await tx.branch('bank-b', 'credit', { accountId: 'dave', amount: 10_000 });
      }, { gid: 'demo-2' }),
    );
    await transfer('carol -> bob 999.00 (insufficient funds)', () =>
      client.begin({ mode: 'tcc', gid: 'demo-3', wait: true, branches: branches('carol', 'bob', 99_900) }),
    );

    await transfer('alice -> bob 50.00, bank B killed -9 after try', async () => {
      await client.begin({ mode: 'tcc', gid: 'demo-4', timeoutMs: 60_000 });
      await client.addBranch('demo-4', { participant: 'bank-a', action: 'debit', payload: { accountId: 'alice', amount: 5_000 } });
      await client.addBranch('demo-4', { participant: 'bank-b', action: 'credit', payload: { accountId: 'bob', amount: 5_000 } });
      await bankB.process.kill('SIGKILL');
      console.log('  bank B killed; committing while it is down...');
      await client.commit('demo-4');
      await sleep(1_500);
      console.log(`  status while bank B is down: ${(await client.get('demo-4')).status}; restarting bank B`);
      await bankB.start();
      return finished(client, 'demo-4');
    });

    await transfer('alice -> dave 75.00, coordinator killed -9 after decision', () =>
      killCoordinatorAfterDecision(coord, client, 'demo-5', () => client.begin({ mode: 'tcc', gid: 'demo-5', wait: true, branches: branches('alice', 'dave', 7_500) })),
    );

    const a = await accountsOf(bankA);
    const b = await accountsOf(bankB);
    printTable(['transfer', 'gid', 'outcome', 'bank A before', 'bank A after', 'bank B before', 'bank B after'], rows.map((r) => [r.transfer, r.gid, r.outcome, money(r.aBefore), money(r.aAfter), money(r.bBefore), money(r.bAfter)]), 3);
    const finalTotal = a.totalBalance + b.totalBalance;
    const views = await Promise.all(rows.map((r) => client.get(r.gid)));
    const checks: [string, boolean][] = [
      [`total money unchanged: ${money(initialTotal)} before, ${money(finalTotal)} after`, initialTotal === finalTotal],
      [`nothing left frozen: ${money(a.totalFrozen + b.totalFrozen)}`, a.totalFrozen + b.totalFrozen === 0],
      [`no pending credit left: ${money(a.pendingCredits + b.pendingCredits)}`, a.pendingCredits + b.pendingCredits === 0],
      ['every transaction ended (committed or rolled back)', views.every((v) => v.status === 'committed' || v.status === 'rolled_back')],
      ['the refused transfer was rolled back', views[2]?.status === 'rolled_back'],
      ['the transfers with crashes committed', views[3]?.status === 'committed' && views[4]?.status === 'committed'],
    ];
    console.log('\nInvariants:');
    for (const [label, ok] of checks) console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${label}`);
    console.log('\nFinal balances:');
    for (const acc of [...a.accounts, ...b.accounts]) console.log(`  ${acc.id.padEnd(6)} ${money(acc.balance).padStart(10)}`);
    console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. Process logs: ${LOG_DIR}`);
    return checks.every(([, ok]) => ok) ? 0 : 1;
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
