/**
 * `npm run demo -- outbox`: the transactional outbox as a two-phase message (mode msg). An order
 * service creates each order and, in the same local transaction, its message; the coordinator
 * delivers it to the inventory service (HTTP) and publishes `order.created` to RabbitMQ and to
 * NATS JetStream, where an event counter counts events. Then it breaks things: the order service
 * killed -9 between its local commit and its submit (the check-back must find the commit and
 * deliver) and before its local commit (the check-back must roll back), the coordinator killed
 * mid-delivery, and the counter killed mid-batch. It checks that every committed order was
 * delivered and counted exactly once, that nothing was for an order that never committed, and
 * that no message is left open; it exits non-zero if one fails.
 *
 * Needs RabbitMQ at RABBITMQ_URL (default amqp://guest:guest@127.0.0.1:5672) and NATS with
 * JetStream at NATS_URL (default nats://127.0.0.1:4222). It takes the queue `order.created` and
 * the stream ORDER_CREATED for the run (refusing to when another consumer has them) and deletes
 * them at the end.
 */
import amqplib from 'amqplib';
import pg from 'pg';
import { connect as natsConnect } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { natsConnectionOptions, type TransactionDetailView, type TransactionPage, type TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import type { RunningEmbeddedPostgres } from '../apps/coordinator/src/database/embedded-postgres.js';
import { ORDER_EVENTS, type EventSource } from '../apps/event-counter/src/event-names.js';
import { CoordinatorProxy } from './lib/coordinator-proxy.js';
import {
  DEMO_RECOVERY_ENV,
  LOG_DIR,
  appProcess,
  coordinator,
  finished,
  freePort,
  generateApiKeys,
  getJson,
  killCoordinatorAt,
  participantService,
  postJson,
  printTable,
  until,
  type CoordinatorHandle,
  type ManagedProcess,
} from './lib/stack.js';

/** The brokers: RABBITMQ_URL / NATS_URL, else the tests' TEST_* ones (the demos e2e test runs this demo), else the machine's. */
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.NATS_URL ?? process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const SKU = 'widget';
const INITIAL_STOCK = 1_000;
/** The messages whose sender is killed: a short deadline, so the check-back comes within seconds. */
const SHORT_TIMEOUT_MS = 3_000;
/** Scenario 6: orders waiting in both brokers for the counter, and its pause per message while they are counted. */
const BATCH_ORDERS = 6;
const SLOW_EVENT_DELAY_MS = 600;

interface Placed {
  scenario: string;
  gid: string;
  orderId: string;
  qty: number;
  /** What the order service answered: `201 submitted`, `409 ORDER_REFUSED (order_exists)`, `no answer (...)`. */
  answer: string;
  /** Whether the order should exist at the end (its local transaction committed). */
  commits: boolean;
}

interface OrderAnswer {
  submitted?: boolean;
  error?: string;
  reason?: string;
}

/** One line when a broker is not answering (the demo cannot run without both). */
async function checkBrokers(): Promise<void> {
  try {
    const connection = await amqplib.connect(RABBITMQ_URL, { timeout: 5_000 });
    await connection.close();
  } catch (error) {
    throw new Error(`the outbox demo needs RabbitMQ at ${RABBITMQ_URL} (set RABBITMQ_URL, or \`docker compose up -d rabbitmq\`): ${(error as Error).message || String(error)}`);
  }
  try {
    const connection = await natsConnect({ ...natsConnectionOptions(NATS_URL), timeout: 5_000, maxReconnectAttempts: 0 });
    try {
      await (await jetstreamManager(connection)).getAccountInfo();
    } catch (error) {
      throw new Error(`NATS answers but JetStream does not (start nats-server with -js): ${(error as Error).message}`);
    } finally {
      await connection.close();
    }
  } catch (error) {
    throw new Error(`the outbox demo needs NATS with JetStream at ${NATS_URL} (set NATS_URL, or \`docker compose up -d nats\`): ${(error as Error).message || String(error)}`);
  }
}

/**
 * Removes the queue and the stream a previous run left (their messages were signed for another
 * coordinator), unless a consumer is on them right now: then another run is going on, and this
 * one stops rather than take them away.
 */
async function removeBrokerLeftovers(): Promise<void> {
  const connection = await amqplib.connect(RABBITMQ_URL, { timeout: 5_000 });
  // A failed passive declare (no such queue) closes its channel with an error: expected here.
  connection.on('error', () => undefined);
  const channel = async () => {
    const opened = await connection.createChannel();
    opened.on('error', () => undefined);
    return opened;
  };
  try {
    const queue = await (await channel()).checkQueue(ORDER_EVENTS.event).catch(() => null);
    if (queue && queue.consumerCount > 0) {
      throw new Error(`RabbitMQ queue ${ORDER_EVENTS.event} has ${queue.consumerCount} consumer(s): another outbox demo or event counter is running`);
    }
    if (queue) await (await channel()).deleteQueue(ORDER_EVENTS.event);
  } finally {
    await connection.close().catch(() => undefined);
  }
  const nats = await natsConnect({ ...natsConnectionOptions(NATS_URL), timeout: 5_000 });
  try {
    const manager = await jetstreamManager(nats);
    try {
      const consumer = await manager.consumers.info(ORDER_EVENTS.natsStream, ORDER_EVENTS.natsConsumer);
      if (consumer.num_waiting > 0) throw new Error(`JetStream consumer ${ORDER_EVENTS.natsConsumer} of stream ${ORDER_EVENTS.natsStream} is pulling: another outbox demo or event counter is running`);
    } catch (error) {
      if (!(error instanceof JetStreamApiError)) throw error;
    }
    await manager.streams.delete(ORDER_EVENTS.natsStream).catch((error: unknown) => {
      if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
    });
  } finally {
    await nats.close();
  }
}

/** The event counter as a process: started (or restarted) with extra env, ready once it answers GET /events. */
function eventCounter(env: Record<string, string>, port: number) {
  const managed: ManagedProcess = appProcess('event-counter', 'event-counter', { PORT: String(port), HOST: '127.0.0.1', ...env });
  const url = `http://127.0.0.1:${port}`;
  return {
    process: managed,
    url,
    async start(extraEnv: Record<string, string> = {}): Promise<void> {
      managed.start(extraEnv);
      await managed.untilReady('the event counter to consume', async () => {
        return (await fetch(`${url}/events`)).ok ? true : undefined;
      });
    },
  };
}

/** A pg pool per database the checks read, ended with the demo. */
function reader(url: string, stoppers: (() => Promise<void>)[]): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  stoppers.push(() => pool.end());
  return pool;
}

async function countsBy(pool: pg.Pool, sql: string): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ key: string; n: number }>(sql);
  return new Map(rows.map((r) => [r.key, r.n]));
}

export async function runOutboxDemo(db: RunningEmbeddedPostgres, stoppers: (() => Promise<void>)[]): Promise<boolean> {
  await checkBrokers();
  await removeBrokerLeftovers();
  // Last to run (stoppers run in reverse): the queue and the stream go once the counter has stopped.
  stoppers.push(() => removeBrokerLeftovers().catch((error: unknown) => console.log(`  could not remove the queue or the stream: ${(error as Error).message}`)));

  const keys = generateApiKeys();
  // The order service is a participant (it registers, and answers the check-back) and a
  // transaction manager (it sends its messages): one key with both roles.
  const orderKey = generateApiKeys().client;
  const coord: CoordinatorHandle = await coordinator('outbox-coordinator', db.urlFor('demo_coordinator'), {
    API_KEYS: `${keys.API_KEYS},client+participant:${orderKey}`,
    ...DEMO_RECOVERY_ENV,
    RABBITMQ_URL,
    NATS_URL,
  });
  stoppers.push(() => coord.process.kill());
  console.log(`Starting the coordinator on ${coord.url} (RabbitMQ ${RABBITMQ_URL}, NATS ${NATS_URL})...`);
  await coord.start();
  const proxy = new CoordinatorProxy(coord.port);
  await proxy.start();
  stoppers.push(() => proxy.stop());

  const counter = eventCounter(
    { DATABASE_URL: db.urlFor('demo_events'), COORDINATOR_URL: coord.url, COORDINATOR_API_KEY: keys.participant, RABBITMQ_URL, NATS_URL, BATCH_SIZE: '10' },
    await freePort(),
  );
  stoppers.push(() => counter.process.kill());
  console.log('Starting the event counter (it registers its publish targets, declares the queue and creates the stream)...');
  await counter.start();
  const inventory = await participantService('inventory', 'inventory', db.urlFor('demo_inventory'), coord.url, 'http', undefined, undefined, keys.participant);
  // The order service reaches the coordinator through the proxy, which can hold its begin or its submit.
  const order = await participantService('order', 'order', db.urlFor('demo_order'), proxy.url, 'http', undefined, undefined, orderKey);
  stoppers.push(() => inventory.process.kill(), () => order.process.kill());
  console.log('Starting the inventory service and the order service (its coordinator calls through a proxy)...');
  await Promise.all([inventory.start(), order.start()]);
  const stocked = await postJson(`${inventory.url}/stock`, { sku: SKU, available: INITIAL_STOCK });
  if (stocked.status !== 201) throw new Error(`stocking ${SKU} failed: ${stocked.status}`);

  // The orders are begun by the order service with its own key, and a client key reads only the
  // transactions it began (OWNER_SCOPED_KEYS): the demo watches them as an operator does.
  const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.admin });
  const orders = reader(db.urlFor('demo_order'), stoppers);
  const stock = reader(db.urlFor('demo_inventory'), stoppers);
  const events = reader(db.urlFor('demo_events'), stoppers);
  const placed: Placed[] = [];

  const place = async (scenario: string, gid: string, orderId: string, qty: number, commits: boolean, timeoutMs?: number): Promise<Placed> => {
    let answer: string;
    try {
      const { status, body } = await postJson<OrderAnswer>(`${order.url}/orders`, { orderId, customer: 'alice', sku: SKU, qty, amount: qty * 1_250, gid, timeoutMs });
      answer = status === 201 ? `201 ${body.submitted ? 'submitted' : 'committed, submit lost'}` : `${status} ${body.error ?? ''}${body.reason ? ` (${body.reason})` : ''}`;
    } catch (error) {
      answer = `no answer (${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message})`;
    }
    const entry = { scenario, gid, orderId, qty, answer, commits };
    placed.push(entry);
    return entry;
  };
  const eventsOf = (prefix: string) =>
    countsBy(events, `SELECT source AS key, count(*)::int AS n FROM order_events WHERE starts_with(gid, '${prefix}') GROUP BY source`);

  console.log('1. Ordinary orders...');
  for (let i = 1; i <= 3; i++) await place('1 ordinary order', `outbox-1-${i}`, `A-100${i}`, i, true);
  await Promise.all(placed.map((p) => finished(client, p.gid)));

  console.log('2. An order refused in its local transaction (its id is taken)...');
  await place('2 refused locally (id taken)', 'outbox-2-1', 'A-1001', 5, false);

  console.log('3. The order service killed -9 between its local commit and its submit...');
  // The client's request fails as soon as the order service's socket closes, which may come
  // before the kill has seen the process exit (it does on Node 24): wait for the kill itself
  // before restarting, or the restart finds the process still "running".
  let killedAfterCommit: Promise<void> = Promise.resolve();
  proxy.hold('commit', 'outbox-3-', (gid) => (killedAfterCommit = (async () => {
    await order.process.kill('SIGKILL');
    console.log(`  ${gid}: the order committed locally; the order service killed -9 as its submit reached the proxy`);
  })()));
  await place('3 killed after local commit', 'outbox-3-1', 'A-3001', 2, true, SHORT_TIMEOUT_MS);
  await killedAfterCommit;
  console.log(`  status while the order service is down: ${(await client.get('outbox-3-1')).status}; restarting it (the check-back comes at the deadline)`);
  await order.start();
  await finished(client, 'outbox-3-1');

  console.log('4. The order service killed -9 before its local commit...');
  let killedBeforeCommit: Promise<void> = Promise.resolve();
  proxy.hold('begin', 'outbox-4-', (gid) => (killedBeforeCommit = (async () => {
    await order.process.kill('SIGKILL');
    console.log(`  ${gid}: the message begun at the coordinator; the order service killed -9 before its local transaction ran`);
  })()));
  await place('4 killed before local commit', 'outbox-4-1', 'A-4001', 2, false, SHORT_TIMEOUT_MS);
  await killedBeforeCommit;
  console.log(`  status while the order service is down: ${(await client.get('outbox-4-1')).status}; restarting it`);
  await order.start();
  await finished(client, 'outbox-4-1');

  console.log('5. The coordinator killed -9 mid-delivery (one branch answered, the others maybe in flight)...');
  await killCoordinatorAt(coord, client, 'outbox-5-1', 'mid_phase2', async () => {
    const entry = await place('5 coordinator killed mid-delivery', 'outbox-5-1', 'A-5001', 3, true);
    console.log(`  the order service answered: ${entry.answer}`);
  });

  console.log(`6. The event counter killed -9 mid-batch (${BATCH_ORDERS} events waiting on each broker, ${SLOW_EVENT_DELAY_MS} ms per event)...`);
  await counter.process.kill();
  for (let i = 1; i <= BATCH_ORDERS; i++) await place('6 counter killed mid-batch', `outbox-6-${i}`, `A-600${i}`, 1, true);
  await Promise.all(placed.filter((p) => p.gid.startsWith('outbox-6-')).map((p) => finished(client, p.gid)));
  // Everything waiting fits in one batch (of 10; a duplicate publish from scenario 5 may wait too), so a kill
  // while it runs leaves every event it counted unacknowledged.
  await counter.start({ EVENT_DELAY_MS: String(SLOW_EVENT_DELAY_MS) });
  await until(
    'the counter to count some of the batch on both brokers',
    async () => {
      const n = await eventsOf('outbox-6-');
      return (n.get('rabbitmq') ?? 0) >= 1 && (n.get('nats') ?? 0) >= 1 ? true : undefined;
    },
    60_000,
    50,
  );
  await counter.process.kill('SIGKILL');
  const countedAtKill = await eventsOf('outbox-6-');
  console.log(`  counter killed -9 with rabbitmq ${countedAtKill.get('rabbitmq') ?? 0}/${BATCH_ORDERS} and nats ${countedAtKill.get('nats') ?? 0}/${BATCH_ORDERS} counted, none acknowledged; restarting it`);
  await counter.start();

  // The end state: every message ended, and every committed order counted on both brokers.
  const committedGids = () => placed.filter((p) => p.commits).map((p) => p.gid);
  const openMessages = async (): Promise<TransactionView[]> => {
    const pages = await Promise.all(
      (['active', 'committing', 'rolling_back'] as const).map((status) => getJson<TransactionPage>(`${coord.url}/admin/transactions?mode=msg&status=${status}&limit=200`, keys.admin)),
    );
    return pages.flatMap((p) => p.items);
  };
  console.log('Waiting for every message to end and every event to be counted...');
  const open = await until('no message left open', async () => ((await openMessages()).length === 0 ? [] : undefined), 60_000, 250).catch(() => openMessages());
  await until(
    'every committed order counted on both brokers',
    async () => {
      const n = await countsBy(events, `SELECT source AS key, count(DISTINCT gid)::int AS n FROM order_events GROUP BY source`);
      return n.get('rabbitmq') === committedGids().length && n.get('nats') === committedGids().length ? true : undefined;
    },
    60_000,
    250,
  ).catch(() => undefined);

  // What each store holds, by gid.
  const orderRows = await countsBy(orders, `SELECT gid AS key, count(*)::int AS n FROM orders GROUP BY gid`);
  const applied = await countsBy(stock, `SELECT gid AS key, count(*)::int AS n FROM order_stock GROUP BY gid`);
  const counted: Record<EventSource, Map<string, number>> = {
    rabbitmq: await countsBy(events, `SELECT gid AS key, count(*)::int AS n FROM order_events WHERE source = 'rabbitmq' GROUP BY gid`),
    nats: await countsBy(events, `SELECT gid AS key, count(*)::int AS n FROM order_events WHERE source = 'nats' GROUP BY gid`),
  };
  // Scenario 6's only: the coordinator's crash in scenario 5 may have published its event twice too.
  const redeliveries = await countsBy(events, `SELECT source AS key, count(*)::int AS n FROM order_event_redeliveries WHERE starts_with(gid, 'outbox-6-') GROUP BY source`);
  const { rows: stockRows } = await stock.query<{ available: number; sold: number }>(`SELECT available, sold FROM stock WHERE sku = $1`, [SKU]);
  const details = new Map(
    await Promise.all(placed.map(async (p) => [p.gid, await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/${p.gid}`, keys.admin)] as const)),
  );
  const allMsg = await getJson<TransactionPage>(`${coord.url}/admin/transactions?mode=msg&limit=200`, keys.admin);

  const decidedBy = (view: TransactionDetailView | undefined): string => {
    // The first status change out of active is the decision.
    const decision = view?.events.find((e) => e.type === 'status' && e.from === 'active');
    const cause = decision && typeof decision.detail === 'object' && decision.detail !== null && !Array.isArray(decision.detail) ? decision.detail.cause : undefined;
    if (cause === 'check_answered') return decision?.to === 'committing' ? 'check-back: 2xx' : 'check-back: 409';
    if (cause === 'commit_requested') return 'submit';
    if (cause === 'rollback_requested') return 'rollback request';
    return typeof cause === 'string' ? cause : '-';
  };
  const n = (map: Map<string, number>, gid: string) => map.get(gid) ?? 0;
  printTable(
    ['scenario', 'gid', 'order', 'order service answered', 'message', 'decided by', 'order row', 'inventory', 'RabbitMQ', 'NATS'],
    placed.map((p) => {
      const view = details.get(p.gid);
      return [
        p.scenario,
        p.gid,
        p.orderId,
        p.answer,
        view ? (view.reason ? `${view.status} (${view.reason})` : view.status) : '?',
        decidedBy(view),
        String(n(orderRows, p.gid)),
        String(n(applied, p.gid)),
        String(n(counted.rabbitmq, p.gid)),
        String(n(counted.nats, p.gid)),
      ];
    }),
    6,
  );

  const committed = placed.filter((p) => p.commits);
  const neverCommitted = placed.filter((p) => !p.commits);
  const soldExpected = committed.reduce((sum, p) => sum + p.qty, 0);
  const stockNow = stockRows[0] ?? { available: -1, sold: -1 };
  const statusOf = (gid: string) => details.get(gid)?.status;
  const redelivered = (source: EventSource) => redeliveries.get(source) ?? 0;
  const midBatch = (source: EventSource) => {
    const k = countedAtKill.get(source) ?? 0;
    return k >= 1 && k < BATCH_ORDERS;
  };
  const orderGids = [...orderRows.keys()].sort();
  const checks: [string, boolean][] = [
    [
      `every committed order's message delivered once to inventory and counted once from RabbitMQ and once from NATS (${committed.length} orders)`,
      committed.every((p) => n(orderRows, p.gid) === 1 && n(applied, p.gid) === 1 && n(counted.rabbitmq, p.gid) === 1 && n(counted.nats, p.gid) === 1),
    ],
    [
      `the order rows are exactly the committed orders' (${orderGids.length} rows)`,
      JSON.stringify(orderGids) === JSON.stringify(committed.map((p) => p.gid).sort()),
    ],
    [
      `nothing applied or counted for the orders that never committed (${neverCommitted.map((p) => p.gid).join(', ')})`,
      neverCommitted.every((p) => n(orderRows, p.gid) === 0 && n(applied, p.gid) === 0 && n(counted.rabbitmq, p.gid) === 0 && n(counted.nats, p.gid) === 0),
    ],
    [
      `stock sold = units ordered: ${stockNow.sold} of ${soldExpected}, available + sold = ${stockNow.available + stockNow.sold} of ${INITIAL_STOCK}`,
      stockNow.sold === soldExpected && stockNow.available + stockNow.sold === INITIAL_STOCK,
    ],
    [
      `the check-back found the commit of the order whose service died before its submit, and delivered it: ${statusOf('outbox-3-1')}, ${decidedBy(details.get('outbox-3-1'))}`,
      statusOf('outbox-3-1') === 'committed' && decidedBy(details.get('outbox-3-1')) === 'check-back: 2xx',
    ],
    [
      `the check-back rolled back the message whose service died before its local commit: ${statusOf('outbox-4-1')} (${details.get('outbox-4-1')?.reason ?? '-'})`,
      statusOf('outbox-4-1') === 'rolled_back' && details.get('outbox-4-1')?.reason === 'timeout' && decidedBy(details.get('outbox-4-1')) === 'check-back: 409',
    ],
    [
      `the counter was killed mid-batch (counted then: rabbitmq ${countedAtKill.get('rabbitmq') ?? 0}, nats ${countedAtKill.get('nats') ?? 0} of ${BATCH_ORDERS}, none acknowledged)`,
      midBatch('rabbitmq') && midBatch('nats'),
    ],
    [
      `its batch redelivered after the restart, the events it had counted recognised as duplicates: rabbitmq ${redelivered('rabbitmq')}, nats ${redelivered('nats')}`,
      redelivered('rabbitmq') >= 1 && redelivered('nats') >= 1,
    ],
    [`no message left active, committing or rolling back: ${open.length}${open.length ? ` (${open.map((v) => `${v.gid} ${v.status}`).join(', ')})` : ''}`, open.length === 0],
    [
      `every message ended (${allMsg.items.filter((v) => v.status === 'committed').length} committed, ${allMsg.items.filter((v) => v.status === 'rolled_back').length} rolled back), committed exactly when its order was`,
      allMsg.items.length === placed.length &&
        allMsg.items.every((v) => v.status === 'committed' || v.status === 'rolled_back') &&
        placed.every((p) => statusOf(p.gid) === (p.commits ? 'committed' : 'rolled_back')),
    ],
  ];
  console.log('\nInvariants:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${label}`);
  console.log(`\nProcess logs: ${LOG_DIR}`);
  return checks.every(([, ok]) => ok);
}
