/**
 * The workflow demo: `npm run demo -- workflow`. An order placed as a workflow (mode workflow,
 * PROTOCOL.md 3.7) by an SDK host (test/fixtures/workflow-demo/order-host.ts): reserve the stock
 * (TCC), charge the payment (2PC, the provider answers long-running: 202, then its answer is
 * reported through BranchOutcomes or found by the coordinator's next call), ask a person's
 * approval if the order is over APPROVAL_LIMIT (TCC, waits until the person decides through the
 * approvals app's own endpoint; this script plays the person) while the parcel ships (saga). The participants
 * (test/fixtures/workflow-demo/shop.ts) keep their state in Postgres databases of the embedded
 * server, with every call they received, so the invariants are checked by SQL.
 *
 * Scenarios: all approved; approval refused; the host killed -9 between two steps (the
 * coordinator resumes it, the restarted host replays); the coordinator killed -9 while the
 * approval waits; the deadline passing while the payment is ongoing; a small order (no approval). Checks: stock and money
 * conserved, every workflow terminal, no phase-1 call made twice for one step, each rollback
 * newest step first.
 */
import { resolve } from 'node:path';
import pg from 'pg';
import type { BranchView, TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import type { RunningEmbeddedPostgres } from '../apps/coordinator/src/database/embedded-postgres.js';
import { MERCHANT, SHOP_PARTICIPANTS, type ShopPart } from '../test/fixtures/workflow-demo/shop.js';
import { APPROVAL_LIMIT, type OrderInput } from '../test/fixtures/workflow-demo/order-host.js';
import { coordinator, finished, freePort, getJson, ManagedProcess, postJson, printTable, ROOT, sleep, until } from './lib/stack.js';

/** The databases this demo uses, recreated by scripts/demo.ts before it runs. */
export const WORKFLOW_DEMO_DATABASES = ['demo_coordinator', 'demo_wf_inventory', 'demo_wf_payments', 'demo_wf_approvals', 'demo_wf_shipping', 'demo_wf_orders'];

const HOST = 'wf-orders';
const PARTS = Object.keys(SHOP_PARTICIPANTS) as ShopPart[];
/** Each step's phase 1 and rollback phase, by the participant that takes it. */
const PHASES: Record<ShopPart, { phase1: string; rollback: string }> = {
  inventory: { phase1: 'try', rollback: 'cancel' },
  payments: { phase1: 'prepare', rollback: 'rollback' },
  approvals: { phase1: 'try', rollback: 'cancel' },
  shipping: { phase1: 'execute', rollback: 'compensate' },
};
const partOf = (participant: string): ShopPart | undefined => PARTS.find((p) => SHOP_PARTICIPANTS[p] === participant);

interface CallRow {
  part: ShopPart;
  gid: string;
  branch_id: string;
  phase: string;
  answer: string | null;
  at: number;
}

interface Scenario {
  gid: string;
  label: string;
  expected: string;
  view: TransactionView;
  /** From placing the order to the workflow's end, in seconds. */
  seconds: number;
}

const money = (cents: number) => (cents / 100).toFixed(2);
const outcomeOf = (view: TransactionView) => (view.reason ? `${view.status} (${view.reason})` : view.status);

export async function runWorkflowDemo(db: RunningEmbeddedPostgres, stoppers: (() => Promise<void>)[]): Promise<boolean> {
  const coord = await coordinator('workflow-coordinator', db.urlFor('demo_coordinator'), {
    // A host that stopped is called to run its workflow again after 2 s without progress (30 s by default).
    WORKFLOW_RESUME_MS: '2000',
    RECOVERY_INTERVAL_MS: '250',
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '1000',
    LEASE_MS: '6000',
    CALL_TIMEOUT_MS: '3000',
  });
  stoppers.push(() => coord.process.kill());
  console.log(`Starting the coordinator on ${coord.url}...`);
  await coord.start();

  const shopEnv: Record<string, string> = { COORDINATOR_URL: coord.url };
  const shopUrls = {} as Record<ShopPart, string>;
  for (const part of PARTS) {
    const port = await freePort();
    shopUrls[part] = `http://127.0.0.1:${port}`;
    shopEnv[`${part.toUpperCase()}_PORT`] = String(port);
    shopEnv[`${part.toUpperCase()}_DATABASE_URL`] = db.urlFor(`demo_wf_${part}`);
  }
  const shop = new ManagedProcess('workflow-shop', resolve(ROOT, 'dist/test/fixtures/workflow-demo/shop.main.js'), shopEnv);
  const hostPort = await freePort();
  const hostUrl = `http://127.0.0.1:${hostPort}`;
  const host = new ManagedProcess('workflow-host', resolve(ROOT, 'dist/test/fixtures/workflow-demo/order-host.main.js'), {
    PORT: String(hostPort),
    DATABASE_URL: db.urlFor('demo_wf_orders'),
    COORDINATOR_URL: coord.url,
    PARTICIPANT_NAME: HOST,
  });
  stoppers.push(() => shop.kill(), () => host.kill());

  const registered = (process: ManagedProcess, names: Record<string, string>) =>
    process.untilReady(`${process.name} to register`, async () => {
      const list = await getJson<{ name: string; endpoint: string | null }[]>(`${coord.url}/v1/participants`);
      return Object.entries(names).every(([name, url]) => list.some((p) => p.name === name && p.endpoint === `${url}/tx`)) ? true : undefined;
    });
  const startHost = async (holdBetweenStepsOf: string) => {
    host.start({ HOLD_BETWEEN_STEPS_OF: holdBetweenStepsOf });
    await registered(host, { [HOST]: hostUrl });
  };

  console.log('Starting the shop (inventory, payments, approvals, shipping) and the order workflow host...');
  shop.start();
  await registered(shop, Object.fromEntries(PARTS.map((p) => [SHOP_PARTICIPANTS[p], shopUrls[p]])));
  // The host holds this gid's local step between the payment and the approval: the demo kills it there.
  const killedHostGid = 'wf-3';
  const killedCoordinatorGid = 'wf-4';
  await startHost(killedHostGid);

  const sql = {} as Record<ShopPart, pg.Client>;
  for (const part of PARTS) {
    sql[part] = new pg.Client({ connectionString: db.urlFor(`demo_wf_${part}`) });
    await sql[part].connect();
  }
  stoppers.push(async () => {
    for (const part of PARTS) await sql[part].end();
  });
  await sql.inventory.query(`INSERT INTO stock (sku, available) VALUES ('lamp', 20)`);
  await sql.payments.query(`INSERT INTO wallets (owner, balance) VALUES ('alice', 100000), ($1, 0)`, [MERCHANT]);

  const stockTotals = async () => {
    const { rows } = await sql.inventory.query<{ available: string; reserved: string; sold: string }>('SELECT sum(available) AS available, sum(reserved) AS reserved, sum(sold) AS sold FROM stock');
    const [t] = rows;
    return { available: Number(t.available), reserved: Number(t.reserved), sold: Number(t.sold) };
  };
  const moneyTotals = async () => {
    const { rows } = await sql.payments.query<{ owner: string; balance: string; held: string }>('SELECT owner, balance, held FROM wallets');
    const total = rows.reduce((sum, r) => sum + Number(r.balance) + Number(r.held), 0);
    return { total, held: rows.reduce((sum, r) => sum + Number(r.held), 0), merchant: Number(rows.find((r) => r.owner === MERCHANT)?.balance ?? 0) };
  };
  const stockBefore = await stockTotals();
  const moneyBefore = await moneyTotals();

  const client = new TransactionClient({ coordinatorUrl: coord.url });
  const amounts = new Map<string, number>();
  const place = async (gid: string, input: Omit<OrderInput, 'customer' | 'sku'>, timeoutMs = 60_000) => {
    amounts.set(gid, input.amount);
    const { status } = await postJson(`${hostUrl}/orders`, { gid, input: { ...input, customer: 'alice', sku: 'lamp' }, timeoutMs });
    if (status !== 202) throw new Error(`placing ${gid}: ${status}`);
  };
  const reaches = (gid: string, what: string, done: (branches: BranchView[]) => boolean) =>
    until(`${gid}: ${what}`, async () => (done((await client.get(gid)).branches) ? true : undefined), 60_000, 100);
  const step = (branches: BranchView[], participant: ShopPart) => branches.find((b) => b.participant === SHOP_PARTICIPANTS[participant]);
  /** The person: waits until the approvals desk shows the request, then decides through its own endpoint. */
  const decide = async (orderId: string, approved: boolean) => {
    await until(`the approval of ${orderId} to be asked`, async () => ((await fetch(`${shopUrls.approvals}/approvals/${orderId}`)).ok ? true : undefined), 60_000, 100);
    const { status, body } = await postJson<{ reported: string }>(`${shopUrls.approvals}/approvals/${orderId}/decision`, { approved });
    console.log(`  a person ${approved ? 'approves' : 'refuses'} ${orderId} (reported to the coordinator: ${status === 200 ? body.reported : status})`);
  };

  const scenarios: Scenario[] = [];
  /** When the host was killed (this machine's clock, as the participants' Postgres notes their calls). */
  let hostKilledAt = Number.POSITIVE_INFINITY;
  const scenario = async (gid: string, label: string, expected: string, run: () => Promise<void>) => {
    console.log(`${gid}: ${label}`);
    const startedAt = Date.now();
    await run();
    const view = await finished(client, gid);
    scenarios.push({ gid, label, expected, view, seconds: (Date.now() - startedAt) / 1000 });
  };

  await scenario('wf-1', 'all approved', 'committed', async () => {
    await place('wf-1', { orderId: 'o-1', qty: 2, amount: 4_500, providerDelayMs: 1_000 });
    await decide('o-1', true);
  });

  await scenario('wf-2', 'approval refused', 'rolled_back (client)', async () => {
    await place('wf-2', { orderId: 'o-2', qty: 1, amount: 9_900, providerDelayMs: 1_000 });
    await decide('o-2', false);
  });

  await scenario(killedHostGid, 'host killed -9 between payment and approval', 'committed', async () => {
    await place(killedHostGid, { orderId: 'o-3', qty: 3, amount: 6_000, providerDelayMs: 1_000 });
    await reaches(killedHostGid, 'the payment prepared', (b) => step(b, 'payments')?.status === 'prepared');
    // The host is now in its local step `packing-slip`, which never ends in this process.
    await sleep(500);
    hostKilledAt = Date.now();
    await host.kill('SIGKILL');
    console.log(`  host killed -9 (exit ${(await host.waitExit()) ?? 'SIGKILL'}) after the payment, before the approval; restarting it`);
    await startHost('');
    await reaches(killedHostGid, 'the approval asked by the resumed run', (b) => step(b, 'approvals') !== undefined);
    console.log('  the coordinator resumed the workflow on the restarted host, which replayed reserve and charge from the record');
    await decide('o-3', true);
  });

  await scenario(killedCoordinatorGid, 'coordinator killed -9 while the approval waits', 'committed', async () => {
    await place('wf-4', { orderId: 'o-4', qty: 1, amount: 5_000, providerDelayMs: 500 });
    await reaches('wf-4', 'the approval waiting', (b) => step(b, 'approvals')?.waitingSince != null);
    await coord.process.kill('SIGKILL');
    console.log(`  coordinator killed -9 (exit ${(await coord.process.waitExit()) ?? 'SIGKILL'}) while the approval waits for a person; restarting it`);
    await sleep(1_000);
    await coord.start();
    await decide('o-4', true);
  });

  await scenario('wf-5', 'deadline (8 s) passes while the payment is ongoing', 'rolled_back (timeout)', async () => {
    // The payment provider never answers: the charge stays ongoing (202) until the deadline.
    await place('wf-5', { orderId: 'o-5', qty: 1, amount: 3_000, providerDelayMs: null }, 8_000);
    await reaches('wf-5', 'the payment waiting', (b) => step(b, 'payments')?.waitingSince != null);
    console.log('  the provider never answers; waiting for the deadline');
  });

  await scenario('wf-6', `small order (at most ${money(APPROVAL_LIMIT)}): no approval asked`, 'committed', async () => {
    await place('wf-6', { orderId: 'o-6', qty: 1, amount: 1_500, providerDelayMs: 300 });
  });

  // What each participant received, from its own database.
  const calls: CallRow[] = [];
  for (const part of PARTS) {
    const { rows } = await sql[part].query<Omit<CallRow, 'part' | 'at'> & { at: string }>(
      'SELECT gid, branch_id, phase, answer, extract(epoch FROM received_at) * 1000 AS at FROM calls ORDER BY received_at',
    );
    calls.push(...rows.map((r) => ({ ...r, part, at: Number(r.at) })));
  }
  const phase1Calls = (gid: string, part: ShopPart) => calls.filter((c) => c.gid === gid && c.part === part && c.phase === PHASES[part].phase1);
  /** The steps a rollback undid, in the order their participants got the rollback phase. */
  const undoneOrder = (gid: string): ShopPart[] => {
    const firsts = new Map<ShopPart, number>();
    for (const c of calls) if (c.gid === gid && c.phase === PHASES[c.part].rollback && !firsts.has(c.part)) firsts.set(c.part, c.at);
    return [...firsts.entries()].sort((a, b) => a[1] - b[1]).map(([part]) => part);
  };
  /** Newest first, by the coordinator's record of the steps (its seq order), of the steps that were undone. */
  const newestFirst = (view: TransactionView, undone: ShopPart[]): ShopPart[] =>
    view.branches
      .map((b) => partOf(b.participant))
      .filter((p): p is ShopPart => p !== undefined && undone.includes(p))
      .reverse();

  printTable(
    ['gid', 'scenario', 'outcome', 'phase-1 calls inv/pay/appr/ship', 'undone (in order)', 'seconds'],
    scenarios.map(({ gid, label, view, seconds }) => [
      gid,
      label,
      outcomeOf(view),
      PARTS.map((p) => String(phase1Calls(gid, p).length)).join('/'),
      undoneOrder(gid).join(' > ') || '-',
      seconds.toFixed(1),
    ]),
    5,
  );

  const stockAfter = await stockTotals();
  const moneyAfter = await moneyTotals();
  const units = (t: { available: number; reserved: number; sold: number }) => t.available + t.reserved + t.sold;
  const committedAmount = scenarios.filter((s) => s.view.status === 'committed').reduce((sum, s) => sum + (amounts.get(s.gid) ?? 0), 0);
  const rolledBack = scenarios.filter((s) => s.view.status === 'rolled_back');
  // Phase 1 of a step whose participant answers at once comes once; a long-running one is asked
  // again while it answers ongoing (PROTOCOL.md 3.6), but gives its final answer once. The
  // repeats allowed are the coordinator's own: a retry of a call it recorded as failed for now
  // (no answer in time on a loaded machine, say) and, in the scenario that kills it, asking again
  // a step whose answer it had given the host but not yet written (it writes a step's answer
  // with the workflow's next write: WORKFLOW_ANSWER_HOLD_MS). Such a call is one the history
  // does not show. Never one made because the host replayed a step.
  const repeated: string[] = [];
  let askedAgainAfterKill = 0;
  for (const { gid } of scenarios) {
    const history = await getJson<{ events: { type: string; branchId: string | null; detail: { phase?: string; outcome?: string } | null }[] }>(`${coord.url}/admin/transactions/${gid}`);
    for (const part of PARTS) {
      const seen = phase1Calls(gid, part);
      const branchIds = new Set(seen.map((c) => c.branch_id));
      const recorded = history.events.filter((e) => e.type === 'call' && e.branchId !== null && branchIds.has(e.branchId) && e.detail?.phase === PHASES[part].phase1);
      const retried = recorded.filter((e) => e.detail?.outcome === 'transient').length;
      const longRunning = part !== 'inventory' && part !== 'shipping';
      const final = longRunning ? seen.filter((c) => c.answer !== 'ongoing').length : seen.length;
      const recordedFinal = recorded.filter((e) => e.detail?.outcome !== 'ongoing').length;
      const unwritten = gid === killedCoordinatorGid ? Math.max(0, final - recordedFinal) : 0;
      askedAgainAfterKill += unwritten;
      if (final > 1 + retried + unwritten) repeated.push(`${gid} ${part} ${final}`);
    }
  }
  const replayedCalls = [...phase1Calls(killedHostGid, 'inventory'), ...phase1Calls(killedHostGid, 'payments')].filter((c) => c.at > hostKilledAt);
  const ongoingRepeats = calls.filter((c) => c.phase === PHASES[c.part].phase1 && c.answer === 'ongoing').length;
  const { rows: shipments } = await sql.shipping.query<{ order_id: string; status: string }>('SELECT order_id, status FROM shipments ORDER BY order_id');
  const { rows: payments } = await sql.payments.query<{ order_id: string; status: string }>('SELECT order_id, status FROM payments ORDER BY order_id');
  const { rows: approvals } = await sql.approvals.query<{ order_id: string; decision: string }>('SELECT order_id, decision FROM approvals ORDER BY order_id');
  const recordOf = <Row extends { order_id: string }>(rows: Row[], gid: string): Row | undefined => rows.find((r) => r.order_id === `o-${gid.slice(3)}`);
  const deadline = scenarios.find((s) => s.gid === 'wf-5');
  const committedRecordsMatch = scenarios
    .filter((s) => s.view.status === 'committed')
    .every((s) => recordOf(shipments, s.gid)?.status === 'shipped' && recordOf(payments, s.gid)?.status === 'captured');
  // A rolled-back order's parcel was recalled if it had shipped (the deadline's order never got that far).
  const rolledBackRecordsMatch = rolledBack.every((s) => (recordOf(shipments, s.gid)?.status ?? 'recalled') === 'recalled' && recordOf(payments, s.gid)?.status === 'voided');

  const checks: [string, boolean][] = [
    [`stock conserved (available + reserved + sold): ${units(stockBefore)} before, ${units(stockAfter)} after; ${stockAfter.sold} sold, ${stockAfter.reserved} left reserved`, units(stockBefore) === units(stockAfter) && stockAfter.reserved === 0],
    [
      `money conserved: ${money(moneyBefore.total)} before, ${money(moneyAfter.total)} after; the shop captured ${money(moneyAfter.merchant)} = the committed orders' ${money(committedAmount)}; ${money(moneyAfter.held)} left held`,
      moneyBefore.total === moneyAfter.total && moneyAfter.merchant === committedAmount && moneyAfter.held === 0,
    ],
    [
      `every workflow terminal, as expected: ${scenarios.map((s) => `${s.gid} ${outcomeOf(s.view)}`).join(', ')}`,
      scenarios.every((s) => (s.view.status === 'committed' || s.view.status === 'rolled_back') && outcomeOf(s.view) === s.expected),
    ],
    [
      `no phase-1 call made twice for one step: inventory ${calls.filter((c) => c.part === 'inventory' && c.phase === 'try').length} tries, shipping ${calls.filter((c) => c.part === 'shipping' && c.phase === 'execute').length} executes, at most one final answer per long-running step (besides ${ongoingRepeats} calls answered ongoing, asked again as PROTOCOL.md 3.6 says, and ${askedAgainAfterKill} asked again after the coordinator's kill lost an answer it had not written)${repeated.length ? `; twice: ${repeated.join(', ')}` : ''}`,
      repeated.length === 0,
    ],
    [
      `the host killed -9 replayed without calling anyone again: ${killedHostGid}'s reserve and charge got ${replayedCalls.length} phase-1 call(s) after the kill (inventory ${phase1Calls(killedHostGid, 'inventory').length} try in all)`,
      Number.isFinite(hostKilledAt) && replayedCalls.length === 0 && phase1Calls(killedHostGid, 'inventory').length === 1,
    ],
    ...rolledBack.map((s): [string, boolean] => {
      const undone = undoneOrder(s.gid);
      const expected = newestFirst(s.view, undone);
      // Every step it recorded that has a rollback phase (all of the shop's) was undone.
      const recorded = new Set(s.view.branches.map((b) => partOf(b.participant)).filter((p): p is ShopPart => p !== undefined));
      const complete = [...recorded].every((p) => undone.includes(p));
      return [`${s.gid} compensated newest first: ${undone.join(' > ')} (recorded steps newest first: ${expected.join(' > ')})`, complete && undone.join() === expected.join()];
    }),
    [
      `the deadline's ongoing payment got its rollback: wf-5 payments rollback ${calls.filter((c) => c.gid === 'wf-5' && c.part === 'payments' && c.phase === 'rollback').length}, payment ${recordOf(payments, 'wf-5')?.status ?? 'none'}; no approval asked, nothing shipped`,
      deadline?.view.reason === 'timeout' &&
        calls.some((c) => c.gid === 'wf-5' && c.part === 'payments' && c.phase === 'rollback') &&
        recordOf(payments, 'wf-5')?.status === 'voided' &&
        recordOf(approvals, 'wf-5') === undefined &&
        recordOf(shipments, 'wf-5') === undefined,
    ],
    ['every committed order shipped and captured, every rolled-back one recalled and voided', committedRecordsMatch && rolledBackRecordsMatch],
  ];
  console.log('\nInvariants:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${label}`);
  return checks.every(([, ok]) => ok);
}
