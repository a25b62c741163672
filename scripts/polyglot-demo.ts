/**
 * `npm run demo -- polyglot`: one transfer system over three data layers. Bank A keeps its
 * accounts in Postgres through TypeORM (the account service), bank B in MariaDB through plain
 * mysql2 (apps/mariadb-bank), and a loyalty service its points in Redis (apps/loyalty). Every
 * transfer debits A, credits B and awards points, all-or-nothing, in TCC, saga and 2PC (XA on
 * both databases); a refusal from each store, bank B killed -9 with its XA branch prepared, and
 * the coordinator killed -9 after its decision. Then it checks the invariants across all three
 * stores and exits non-zero if one fails.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient, type BranchRequest } from '@nest-dtx/sdk';
import type { RunningEmbeddedPostgres } from '../apps/coordinator/src/database/embedded-postgres.js';
import {
  LOG_DIR,
  REDIS_URL,
  accountsOf,
  DEMO_RECOVERY_ENV,
  coordinator,
  generateApiKeys,
  getJson,
  openAccount,
  participantService,
  postJson,
  finished,
  killCoordinatorAfterDecision,
  printTable,
  sleep,
  type ServiceHandle,
} from './lib/stack.js';

/** The MariaDB (or MySQL) the demo uses: the machine's, or DEMO_MARIADB_URL. Its database demo_bank_b is recreated. */
const MARIADB_URL = process.env.DEMO_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/';
const BANK_B_DATABASE = 'demo_bank_b';

const money = (cents: number) => (cents / 100).toFixed(2);
/** One loyalty point per 10.00 transferred. */
const pointsFor = (cents: number) => Math.floor(cents / 1000);

interface PointsSummary {
  customers: { customer: string; points: number; pending: number; held: number }[];
  totalPoints: number;
  totalPending: number;
  totalHeld: number;
}

interface Row {
  transfer: string;
  gid: string;
  outcome: string;
  a: string;
  b: string;
  points: string;
}

async function recreateMariaDbDatabase(): Promise<string> {
  let admin: mysql.Connection;
  try {
    admin = await mysql.createConnection({ uri: MARIADB_URL, connectTimeout: 5_000 });
  } catch (error) {
    throw new Error(
      `the polyglot demo needs MariaDB or MySQL at ${MARIADB_URL} (set DEMO_MARIADB_URL, or \`docker compose up -d mariadb\`): ${(error as Error).message}`,
    );
  }
  try {
    // XA transactions a killed earlier run left prepared in the old database would hold its rows.
    const [prepared] = await admin.query<mysql.RowDataPacket[]>('XA RECOVER');
    for (const row of prepared) {
      const data = String(row.data);
      const bqual = data.slice(Number(row.gtrid_length));
      if (bqual === 'bank-b') await admin.query(`XA ROLLBACK ?, ?`, [data.slice(0, Number(row.gtrid_length)), bqual]);
    }
    await admin.query(`DROP DATABASE IF EXISTS \`${BANK_B_DATABASE}\``);
    await admin.query(`CREATE DATABASE \`${BANK_B_DATABASE}\``);
  } finally {
    await admin.end();
  }
  const url = new URL(MARIADB_URL);
  url.pathname = `/${BANK_B_DATABASE}`;
  return url.toString();
}

/** bank-b's XA transactions that MariaDB holds prepared. */
async function preparedOnMariaDb(): Promise<number> {
  const admin = await mysql.createConnection({ uri: MARIADB_URL });
  try {
    const [rows] = await admin.query<mysql.RowDataPacket[]>('XA RECOVER');
    return rows.filter((row) => String(row.data).slice(Number(row.gtrid_length)) === 'bank-b').length;
  } finally {
    await admin.end();
  }
}

async function preparedOnPostgres(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE database = current_database()`);
    return rows[0].n;
  } finally {
    await client.end();
  }
}

/** Deletes the loyalty service's keys (its points and its barrier's) left by an earlier run, and nothing else. */
async function clearRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`the polyglot demo needs Redis at ${REDIS_URL} (set TEST_REDIS_URL): ${(error as Error).message}`);
  }
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

export async function runPolyglotDemo(db: RunningEmbeddedPostgres, stoppers: (() => Promise<void>)[]): Promise<boolean> {
  const bankBUrl = await recreateMariaDbDatabase();
  await clearRedisPrefix('loyalty:');
  const keys = generateApiKeys();
  const coord = await coordinator('polyglot-coordinator', db.urlFor('demo_coordinator'), { API_KEYS: keys.API_KEYS, ...DEMO_RECOVERY_ENV });
  stoppers.push(() => coord.process.kill());
  console.log(`Starting the coordinator on ${coord.url}...`);
  await coord.start();

  const service = (app: 'account' | 'mariadb-bank' | 'loyalty', name: string, url: string) =>
    participantService(app, name, url, coord.url, 'http', undefined, undefined, keys.participant);
  const bankA = await service('account', 'bank-a', db.urlFor('demo_bank_a'));
  const bankB = await service('mariadb-bank', 'bank-b', bankBUrl);
  const loyalty = await service('loyalty', 'loyalty', REDIS_URL);
  stoppers.push(() => bankA.process.kill(), () => bankB.process.kill(), () => loyalty.process.kill());
  console.log('Starting bank A (Postgres, TypeORM), bank B (MariaDB, mysql2) and loyalty (Redis)...');
  await Promise.all([bankA.start(), bankB.start(), loyalty.start()]);

  await openAccount(bankA, 'alice', 100_000);
  await openAccount(bankA, 'carol', 5_000);
  await openAccount(bankB, 'bob', 0);
  await openAccount(bankB, 'dave', 0);
  await setPoints(loyalty, 'alice', 0);
  await setPoints(loyalty, 'carol', 100);

  const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
  const pointsOf = () => getJson<PointsSummary>(`${loyalty.url}/points`);
  const totals = async () => ({ a: (await accountsOf(bankA)).totalBalance, b: (await accountsOf(bankB)).totalBalance, points: (await pointsOf()).totalPoints });
  const initial = await totals();
  const rows: Row[] = [];
  /** Points each committed transfer must have awarded, by gid. */
  const awards = new Map<string, number>();

  const transfer = async (label: string, gid: string, award: number, run: () => Promise<TransactionView>): Promise<void> => {
    const before = await totals();
    awards.set(gid, award);
    const view = await run();
    const after = await totals();
    const change = (from: number, to: number, show: (n: number) => string) => `${show(from)} -> ${show(to)}`;
    rows.push({
      transfer: label,
      gid: view.gid,
      outcome: view.reason ? `${view.status} (${view.reason})` : view.status,
      a: change(before.a, after.a, money),
      b: change(before.b, after.b, money),
      points: change(before.points, after.points, String),
    });
  };
  /** Debit on bank A, credit on bank B, points for the payer; `redeem` adds a redemption that must be covered. */
  const branches = (from: string, to: string, amount: number, extra: BranchRequest[] = []): BranchRequest[] => [
    { participant: 'bank-a', action: 'debit', payload: { accountId: from, amount } },
    { participant: 'bank-b', action: 'credit', payload: { accountId: to, amount } },
    { participant: 'loyalty', action: 'award', payload: { customer: from, points: pointsFor(amount) } },
    ...extra,
  ];

  console.log('Running transfers...');
  await transfer('TCC alice -> bob 250.00', 'poly-1', pointsFor(25_000), () =>
    client.begin({ mode: 'tcc', gid: 'poly-1', wait: true, branches: branches('alice', 'bob', 25_000) }),
  );
  await transfer('saga alice -> dave 100.00', 'poly-2', pointsFor(10_000), () => {
    const saga = client.saga({ gid: 'poly-2' });
    for (const [i, b] of branches('alice', 'dave', 10_000).entries()) saga.step(`step-${i}`, b.participant, b.action, b.payload);
    return saga.submit();
  });
  await transfer('2PC (XA on both banks) alice -> bob 40.00', 'poly-3', pointsFor(4_000), () =>
    client.begin({ mode: '2pc', gid: 'poly-3', wait: true, branches: branches('alice', 'bob', 4_000) }),
  );
  await transfer('TCC carol -> bob 999.00 (Postgres refuses: funds)', 'poly-4', 0, () =>
    client.begin({ mode: 'tcc', gid: 'poly-4', wait: true, branches: branches('carol', 'bob', 99_900) }),
  );
  await transfer('TCC carol -> dave 10.00 + redeem 500 points (Redis refuses)', 'poly-5', 0, () =>
    client.begin({
      mode: 'tcc',
      gid: 'poly-5',
      wait: true,
      branches: branches('carol', 'dave', 1_000, [{ participant: 'loyalty', action: 'redeem', payload: { customer: 'carol', points: 500 } }]),
    }),
  );
  await transfer('2PC alice -> bob 50.00, bank B killed -9 with its XA branch prepared', 'poly-6', pointsFor(5_000), async () => {
    await client.begin({ mode: '2pc', gid: 'poly-6', timeoutMs: 60_000 });
    for (const branch of branches('alice', 'bob', 5_000)) await client.addBranch('poly-6', branch);
    await bankB.process.kill('SIGKILL');
    console.log(`  bank B killed; MariaDB still holds ${await preparedOnMariaDb()} prepared XA transaction(s) of bank-b; committing while it is down...`);
    await client.commit('poly-6');
    await sleep(1_500);
    console.log(`  status while bank B is down: ${(await client.get('poly-6')).status}; restarting bank B`);
    await bankB.start();
    return finished(client, 'poly-6');
  });
  await transfer('TCC alice -> dave 75.00, coordinator killed -9 after decision', 'poly-7', pointsFor(7_500), () =>
    killCoordinatorAfterDecision(coord, client, 'poly-7', () => client.begin({ mode: 'tcc', gid: 'poly-7', wait: true, branches: branches('alice', 'dave', 7_500) })),
  );

  const a = await accountsOf(bankA);
  const b = await accountsOf(bankB);
  const points = await pointsOf();
  const views = new Map((await Promise.all(rows.map((r) => client.get(r.gid)))).map((v) => [v.gid, v]));
  const committedAwards = [...awards].reduce((sum, [gid, n]) => sum + (views.get(gid)?.status === 'committed' ? n : 0), 0);
  const carol = points.customers.find((c) => c.customer === 'carol');
  const preparedLeft = (await preparedOnPostgres(db.urlFor('demo_bank_a'))) + (await preparedOnMariaDb());
  printTable(['transfer', 'gid', 'outcome', 'bank A (Postgres)', 'bank B (MariaDB)', 'points (Redis)'], rows.map((r) => [r.transfer, r.gid, r.outcome, r.a, r.b, r.points]), 3);
  const checks: [string, boolean][] = [
    [`money unchanged across Postgres and MariaDB: ${money(initial.a + initial.b)} before, ${money(a.totalBalance + b.totalBalance)} after`, initial.a + initial.b === a.totalBalance + b.totalBalance],
    [`nothing left frozen or pending in either bank: ${money(a.totalFrozen + b.totalFrozen + a.pendingCredits + b.pendingCredits)}`, a.totalFrozen + b.totalFrozen + a.pendingCredits + b.pendingCredits === 0],
    [`points awarded exactly for the committed transfers: ${points.totalPoints - initial.points} of ${committedAwards}`, points.totalPoints - initial.points === committedAwards],
    [`no points left pending or held in Redis: ${points.totalPending + points.totalHeld}`, points.totalPending + points.totalHeld === 0],
    [`carol kept her 100 points after the refused redemption: ${carol?.points ?? 0}`, carol?.points === 100],
    [`no prepared transaction left on either database: ${preparedLeft}`, preparedLeft === 0],
    ['every transaction ended (committed or rolled back)', [...views.values()].every((v) => v.status === 'committed' || v.status === 'rolled_back')],
    ['the two refused transfers were rolled back', views.get('poly-4')?.status === 'rolled_back' && views.get('poly-5')?.status === 'rolled_back'],
    ['the others committed, crashes included', ['poly-1', 'poly-2', 'poly-3', 'poly-6', 'poly-7'].every((gid) => views.get(gid)?.status === 'committed')],
  ];
  console.log('\nInvariants:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${label}`);
  console.log('\nFinal balances and points:');
  for (const acc of [...a.accounts, ...b.accounts]) console.log(`  ${acc.id.padEnd(6)} ${money(acc.balance).padStart(10)}`);
  for (const c of points.customers) console.log(`  ${c.customer.padEnd(6)} ${String(c.points).padStart(10)} points`);
  console.log(`\nProcess logs: ${LOG_DIR}`);
  return checks.every(([, ok]) => ok);
}

async function setPoints(loyalty: ServiceHandle, customer: string, points: number): Promise<void> {
  const { status } = await postJson(`${loyalty.url}/points`, { customer, points });
  if (status !== 201) throw new Error(`setting ${customer}'s points failed: ${status}`);
}
