/**
 * The purchase demo: `npm run demo -- purchase`. An order service (HTTP), an inventory service
 * (NestJS TCP) and an account service (NestJS Redis, or TCP when no Redis answers), each with its
 * own database. Purchases (create the order, reserve the stock, debit the buyer) run as TCC
 * transactions and as sagas, including one that fails on stock and one that fails on funds.
 * Checks: stock + reserved + sold constant, money conserved, no order left pending.
 */
import { createConnection } from 'node:net';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient, type BranchRequest } from '@nest-dtx/sdk';
import type { RunningEmbeddedPostgres } from '../apps/coordinator/src/database/embedded-postgres.js';
import {
  REDIS_URL,
  accountsOf,
  coordinator,
  getJson,
  openAccount,
  participantService,
  postJson,
  type ParticipantTransport,
} from './lib/stack.js';

interface StockSummary {
  stock: { sku: string; available: number; reserved: number; sold: number }[];
  totals: { available: number; reserved: number; sold: number };
}
interface OrdersSummary {
  orders: { id: string; status: string; amount: number }[];
  counts: { pending: number; confirmed: number; cancelled: number };
}

const money = (cents: number) => (cents / 100).toFixed(2);

function redisAnswers(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    socket.setTimeout(1_000);
    socket.once('connect', () => socket.end(() => resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function runPurchaseDemo(db: RunningEmbeddedPostgres, stoppers: (() => Promise<void>)[]): Promise<boolean> {
  const withRedis = await redisAnswers(REDIS_URL);
  const accountTransport: ParticipantTransport = withRedis ? 'redis' : 'tcp';
  if (!withRedis) console.log(`No Redis answers at ${REDIS_URL}: the account service uses TCP instead of Redis.`);

  const coord = await coordinator('purchase-coordinator', db.urlFor('demo_coordinator'), {
    RECOVERY_INTERVAL_MS: '250',
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '1000',
    ...(withRedis ? { REDIS_URL } : {}),
  });
  stoppers.push(() => coord.process.kill());
  await coord.start();
  const order = await participantService('order', 'order', db.urlFor('demo_order'), coord.url, 'http');
  const inventory = await participantService('inventory', 'inventory', db.urlFor('demo_inventory'), coord.url, 'tcp');
  const account = await participantService('account', 'account', db.urlFor('demo_account'), coord.url, accountTransport);
  stoppers.push(() => order.process.kill(), () => inventory.process.kill(), () => account.process.kill());
  console.log(`Starting order (http), inventory (tcp) and account (${accountTransport}) services...`);
  await Promise.all([order.start(), inventory.start(), account.start()]);

  const stockOf = () => getJson<StockSummary>(`${inventory.url}/stock`);
  const ordersOf = () => getJson<OrdersSummary>(`${order.url}/orders`);
  for (const [sku, available] of [['book', 10], ['lamp', 3]] as const) {
    const { status } = await postJson(`${inventory.url}/stock`, { sku, available });
    if (status >= 300) throw new Error(`cannot stock ${sku}: ${status}`);
  }
  await openAccount(account, 'alice', 50_000);
  await openAccount(account, 'bob', 500_000);
  await openAccount(account, 'carol', 1_000);

  const client = new TransactionClient({ coordinatorUrl: coord.url });
  const stockBefore = (await stockOf()).totals;
  const moneyBefore = (await accountsOf(account)).totalBalance;

  const legs = (id: string, customer: string, sku: string, qty: number, amount: number): BranchRequest[] => [
    { participant: 'order', action: 'create', payload: { orderId: id, customer, sku, qty, amount } },
    { participant: 'inventory', action: 'reserve', payload: { sku, qty } },
    { participant: 'account', action: 'debit', payload: { accountId: customer, amount } },
  ];
  const purchases: [string, string, string, string, number, number][] = [
    ['alice buys 2 books', 'alice', 'book', 'p1', 2, 3_000],
    ['bob buys 5 lamps (only 3 in stock)', 'bob', 'lamp', 'p2', 5, 20_000],
    ['carol buys 1 lamp (cannot pay)', 'carol', 'lamp', 'p3', 1, 4_000],
    ['bob buys 3 books', 'bob', 'book', 'p4', 3, 4_500],
  ];
  const rows: string[][] = [];
  for (const mode of ['tcc', 'saga'] as const) {
    for (const [label, customer, sku, id, qty, amount] of purchases) {
      const orderId = `${mode}-${id}`;
      const branches = legs(orderId, customer, sku, qty, amount);
      const view: TransactionView =
        mode === 'tcc'
          ? await client.begin({ mode, gid: `purchase-${orderId}`, wait: true, branches })
          : await branches
              .reduce((saga, b) => saga.step(b.action === 'create' ? 'order' : b.participant, b.participant, b.action, b.payload), client.saga({ gid: `purchase-${orderId}` }))
              .submit();
      const refusal = view.branches.find((b) => b.lastError && typeof b.lastError === 'object' && !Array.isArray(b.lastError));
      const message = refusal ? (refusal.lastError as { message?: unknown }).message : undefined;
      const why = typeof message === 'string' ? message : '';
      rows.push([mode, label, view.gid, view.reason ? `${view.status} (${why || view.reason})` : view.status]);
    }
  }

  const widths = [4, 34, 22, 40].map((w, i) => Math.max(w, ...rows.map((r) => r[i].length)));
  console.log(`\n${['mode', 'purchase', 'gid', 'outcome'].map((h, i) => h.padEnd(widths[i])).join(' | ')}`);
  console.log(widths.map((w) => '-'.repeat(w)).join('-+-'));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join(' | '));

  const stockAfter = (await stockOf()).totals;
  const orders = await ordersOf();
  const moneyAfter = await accountsOf(account);
  const paid = orders.orders.filter((o) => o.status === 'confirmed').reduce((sum, o) => sum + o.amount, 0);
  const units = (t: StockSummary['totals']) => t.available + t.reserved + t.sold;
  const checks: [string, boolean][] = [
    [`stock + reserved + sold constant: ${units(stockBefore)} before, ${units(stockAfter)} after`, units(stockBefore) === units(stockAfter)],
    [`nothing left reserved: ${stockAfter.reserved}`, stockAfter.reserved === 0],
    [`money conserved: ${money(moneyBefore)} = ${money(moneyAfter.totalBalance)} left + ${money(paid)} paid for confirmed orders`, moneyBefore === moneyAfter.totalBalance + paid],
    [`nothing left frozen: ${money(moneyAfter.totalFrozen)}`, moneyAfter.totalFrozen === 0],
    [`no order left pending: ${orders.counts.pending} pending, ${orders.counts.confirmed} confirmed, ${orders.counts.cancelled} cancelled`, orders.counts.pending === 0],
    ['the two good purchases committed in each mode', rows.filter((r) => r[3] === 'committed').length === 4],
  ];
  console.log('\nInvariants:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${label}`);
  return checks.every(([, ok]) => ok);
}
