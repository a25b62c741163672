/**
 * `npm run demo -- at`: the bank transfer in AT mode, written with no compensation code at all.
 * Bank A and bank B (two account services, separate databases) move money with their AtAction
 * methods `at-debit` / `at-credit` (apps/account/src/accounts/at-accounts.service.ts): plain
 * TypeORM reads and saves. The SDK's triggers record each changed row's before and after
 * images and lock the row for the global transaction; a commit releases the locks, a rollback
 * puts the before images back. Every transfer is a 2PC transaction with the branches
 * bank-a/at-debit and bank-b/at-credit.
 *
 * Scenarios: a transfer that commits; a refusal (insufficient funds) while the credit ran; an
 * explicit rollback after both branches committed locally; bank B killed -9 between its local
 * commit and its answer (after the credit's prepare, then after its commit); the coordinator
 * killed -9 after its commit decision; a second transfer on an account a first one holds (it
 * fails cleanly past the lock wait, or waits and proceeds once the first commits), and a plain
 * write to a held account refused with 409. Then the invariants, read from the coordinator and
 * straight from both banks' databases; false if one fails.
 */
import pg from 'pg';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient, type BranchRequest } from '@nest-dtx/sdk';
import type { RunningEmbeddedPostgres } from '../apps/coordinator/src/database/embedded-postgres.js';
import {
  DEMO_RECOVERY_ENV,
  accountService,
  accountsOf,
  coordinator,
  finished,
  generateApiKeys,
  killCoordinatorAfterDecision,
  openAccount,
  postJson,
  printTable,
  sleep,
  until,
  type AccountHandle,
} from './lib/stack.js';
import { countAtRows, type AtRowCounts } from './lib/at-rows.js';

const money = (cents: number) => (cents / 100).toFixed(2);

type BankName = 'bank-a' | 'bank-b';

/** One transfer: from an account of bank A to one of bank B. */
interface Move {
  from: string;
  to: string;
  amount: number;
}

interface Row {
  transfer: string;
  gid: string;
  outcome: string;
  aBefore: number;
  aAfter: number;
  bBefore: number;
  bAfter: number;
}

/** What the demo opens: bank A pays, bank B receives. */
const OPENING: Record<BankName, Record<string, number>> = {
  'bank-a': { alice: 100_000, carol: 5_000 },
  'bank-b': { bob: 0, dave: 0 },
};

/** A 2PC transfer in AT mode: the two AT actions of the account service, nothing else. */
const branches = ({ from, to, amount }: Move): BranchRequest[] => [
  { participant: 'bank-a', action: 'at-debit', payload: { accountId: from, amount } },
  { participant: 'bank-b', action: 'at-credit', payload: { accountId: to, amount } },
];

/** The message of the first branch that was refused, if one was. */
function refusalOf(view: TransactionView): string {
  for (const branch of view.branches) {
    const error = branch.lastError;
    if (error && typeof error === 'object' && !Array.isArray(error) && typeof error.message === 'string') return `${branch.participant}: ${error.message}`;
  }
  return '';
}

/** The `details.reason` of a participant's refusal in `view`, if it refused. */
function reasonOf(view: TransactionView | undefined, participant: BankName): string | null {
  const error = view?.branches.find((b) => b.participant === participant)?.lastError;
  if (!error || typeof error !== 'object' || Array.isArray(error)) return null;
  const details = error.details;
  return details && typeof details === 'object' && !Array.isArray(details) && typeof details.reason === 'string' ? details.reason : null;
}

/** Reads a bank's database directly (its own service may be down). */
class BankDatabase {
  private readonly pool: pg.Pool;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
  }

  /** The account's row as Postgres has it, every column (the image a rollback must restore exactly). */
  async image(id: string): Promise<string> {
    const { rows } = await this.pool.query<{ image: string }>(`SELECT to_jsonb(a)::text AS image FROM accounts a WHERE id = $1`, [id]);
    return rows[0]?.image ?? '(no row)';
  }

  async balance(id: string): Promise<number> {
    const { rows } = await this.pool.query<{ balance: string }>(`SELECT balance FROM accounts WHERE id = $1`, [id]);
    return Number(rows[0]?.balance);
  }

  /** AT undo and lock rows, of one transaction or of all. */
  atRows(gid?: string): Promise<AtRowCounts> {
    return countAtRows(this.pool, gid);
  }

  /** The global transaction that holds an account now (the SDK's own test: a committed branch holds nothing), or null. */
  async heldBy(id: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ gid: string }>(`SELECT gid FROM dtx_at_lock_holder('public.accounts', $1)`, [JSON.stringify([id])]);
    return rows[0]?.gid ?? null;
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

export async function runAtDemo(db: RunningEmbeddedPostgres, stoppers: (() => Promise<void>)[]): Promise<boolean> {
  const keys = generateApiKeys();
  // A call may take up to the banks' lock wait (1 s, the SDK's default at.lockWaitMs) before a
  // held row is refused: the coordinator's call timeout is longer, so the demo shows the bank's
  // own refusal (at_lock_conflict) rather than the coordinator giving up on the call.
  const coord = await coordinator('at-coordinator', db.urlFor('demo_coordinator'), {
    API_KEYS: keys.API_KEYS,
    ...DEMO_RECOVERY_ENV,
    CALL_TIMEOUT_MS: '2500',
    LEASE_MS: '5000',
  });
  stoppers.push(() => coord.process.kill());
  console.log(`Starting the coordinator on ${coord.url}...`);
  await coord.start();

  const bankA: AccountHandle = await accountService('bank-a', db.urlFor('demo_bank_a'), coord.url, 'http', keys.participant);
  const bankB: AccountHandle = await accountService('bank-b', db.urlFor('demo_bank_b'), coord.url, 'http', keys.participant);
  stoppers.push(() => bankA.process.kill(), () => bankB.process.kill());
  console.log('Starting bank A and bank B (AT tables: accounts)...');
  await Promise.all([bankA.start(), bankB.start()]);
  const dbA = new BankDatabase(db.urlFor('demo_bank_a'));
  const dbB = new BankDatabase(db.urlFor('demo_bank_b'));
  stoppers.push(() => dbA.end(), () => dbB.end());

  const banks: Record<BankName, AccountHandle> = { 'bank-a': bankA, 'bank-b': bankB };
  for (const [bank, accounts] of Object.entries(OPENING) as [BankName, Record<string, number>][]) {
    for (const [id, balance] of Object.entries(accounts)) await openAccount(banks[bank], id, balance);
  }

  const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
  const initialTotal = (await accountsOf(bankA)).totalBalance + (await accountsOf(bankB)).totalBalance;
  const rows: Row[] = [];
  const moves = new Map<string, Move>();
  /** Checks made along the way (what was seen at a given moment), printed with the final ones. */
  const seen: [string, boolean][] = [];

  const transfer = async (label: string, gid: string, move: Move, run: () => Promise<TransactionView>): Promise<TransactionView> => {
    moves.set(gid, move);
    const aBefore = (await accountsOf(bankA)).totalBalance;
    const bBefore = (await accountsOf(bankB)).totalBalance;
    const view = await run();
    rows.push({
      transfer: label,
      gid,
      outcome: view.reason ? `${view.status} (${view.reason})` : view.status,
      aBefore,
      aAfter: (await accountsOf(bankA)).totalBalance,
      bBefore,
      bAfter: (await accountsOf(bankB)).totalBalance,
    });
    return view;
  };
  const oneShot = (gid: string, move: Move, wait = true) => client.begin({ mode: '2pc', gid, wait, branches: branches(move) });

  console.log('Running AT transfers...');
  // (1) Commits: both banks' local transactions committed in phase 1, the commit releases the locks.
  await transfer('alice -> bob 250.00', 'at-1', { from: 'alice', to: 'bob', amount: 25_000 }, () => oneShot('at-1', { from: 'alice', to: 'bob', amount: 25_000 }));

  // (2) Refused: carol cannot pay. Phase 1 runs on both branches at once, so bank B's credit
  // usually committed locally before the refusal; the rollback puts bob's row back as it was.
  {
    const move = { from: 'carol', to: 'bob', amount: 99_900 };
    const bobBefore = await dbB.image('bob');
    const view = await transfer('carol -> bob 999.00 (insufficient funds)', 'at-2', move, () => oneShot('at-2', move));
    const credit = view.branches.find((b) => b.participant === 'bank-b');
    console.log(`  refused: ${refusalOf(view)}; bank B's credit ${credit?.result ? 'had committed locally, and was undone' : 'had not run'}`);
    seen.push([`the refused transfer left bob's row exactly as before: ${await dbB.image('bob')}`, view.status === 'rolled_back' && (await dbB.image('bob')) === bobBefore]);
  }

  // (3) Both branches prepared (committed locally, visible to plain reads), then the client rolls
  // back: the credit's before image is restored, every column of it.
  {
    const move = { from: 'alice', to: 'dave', amount: 10_000 };
    const daveBefore = await dbB.image('dave');
    await transfer('alice -> dave 100.00 (interactive, then rolled back)', 'at-3', move, async () => {
      await client.begin({ mode: '2pc', gid: 'at-3', timeoutMs: 60_000 });
      for (const [n, branch] of branches(move).entries()) await client.addBranch('at-3', { ...branch, branchId: `b${n + 1}` });
      const daveDuring = await dbB.balance('dave');
      const during = await dbB.atRows('at-3');
      console.log(`  both prepared: dave's balance in bank B's database is ${money(daveDuring)} (the credit committed locally), ${during.undo} undo / ${during.locks} lock row(s) for at-3; rolling back`);
      seen.push(['the interactive credit had committed locally before the rollback', daveDuring === OPENING['bank-b'].dave + move.amount && during.undo > 0 && during.locks > 0]);
      await client.rollback('at-3');
      return finished(client, 'at-3');
    });
    seen.push([`the rollback restored dave's row exactly: ${await dbB.image('dave')}`, (await dbB.image('dave')) === daveBefore]);
  }

  // (4a) Bank B dies after the credit's phase 1 committed locally, before its answer: the
  // coordinator never heard back, so it rolls back; the rollback reaches bank B once it is back.
  {
    const move = { from: 'alice', to: 'bob', amount: 5_000 };
    const bobBefore = await dbB.image('bob');
    await transfer('alice -> bob 50.00, bank B killed -9 after its credit committed locally', 'at-4', move, async () => {
      await bankB.process.kill();
      await bankB.start({ CRASH_AFTER_PHASE: 'at-credit/prepare' });
      await oneShot('at-4', move, false);
      await until('bank B to kill itself after the credit', () => Promise.resolve(bankB.process.alive ? undefined : true), 30_000);
      // The coordinator's call got no answer: it decides (rollback) without bank B.
      const decided = await until('at-4 to be decided', async () => {
        const { status } = await client.get('at-4');
        return status === 'active' ? undefined : status;
      });
      const during = await dbB.atRows('at-4');
      console.log(
        `  bank B killed after its local commit: bob's balance in its database ${money(await dbB.balance('bob'))}, held by ${(await dbB.heldBy('bob')) ?? 'nobody'}, ${during.undo} undo / ${during.locks} lock row(s) for at-4; ` +
          `status while bank B is down: ${decided}; restarting bank B without the hook`,
      );
      seen.push(['bank B died with the credit committed locally (its undo and lock rows in its database)', during.undo > 0 && during.locks > 0]);
      await bankB.start();
      return finished(client, 'at-4');
    });
    const view = await client.get('at-4');
    seen.push([
      `the transfer cut after bank B's local commit ended consistent: ${view.status}, bob's row ${view.status === 'rolled_back' ? 'restored exactly' : 'credited'}`,
      view.status === 'committed' || (view.status === 'rolled_back' && (await dbB.image('bob')) === bobBefore),
    ]);
  }

  // (4b) Bank B dies after its commit ran, before answering: the locks are released by the
  // commit itself, the batched clean-up's queue dies with the process; the coordinator's retry
  // of the commit is a replay, and the restarted bank's sweep deletes the rows left over.
  await transfer('alice -> dave 30.00, bank B killed -9 after its commit', 'at-5', { from: 'alice', to: 'dave', amount: 3_000 }, async () => {
    await bankB.process.kill();
    await bankB.start({ CRASH_AFTER_PHASE: 'at-credit/commit' });
    await oneShot('at-5', { from: 'alice', to: 'dave', amount: 3_000 }, false);
    await until('bank B to kill itself after the commit', () => Promise.resolve(bankB.process.alive ? undefined : true), 30_000);
    const during = await dbB.atRows('at-5');
    const daveHeld = await dbB.heldBy('dave');
    console.log(
      `  bank B killed after its local commit of phase 2: ${during.undo} undo / ${during.locks} lock row(s) of at-5 left for the clean-up, dave ${daveHeld ? `still held by ${daveHeld}` : 'no longer held (its commit row released the lock)'}; ` +
        `status: ${(await client.get('at-5')).status}; restarting bank B without the hook`,
    );
    seen.push(["bank B's local commit released dave at once, before any clean-up and before the coordinator heard back", daveHeld === null]);
    await bankB.start();
    return finished(client, 'at-5');
  });

  // (4c) The coordinator dies right after writing its commit decision; restarted, it finishes.
  await transfer('alice -> dave 75.00, coordinator killed -9 after decision', 'at-6', { from: 'alice', to: 'dave', amount: 7_500 }, () =>
    killCoordinatorAfterDecision(coord, client, 'at-6', () => oneShot('at-6', { from: 'alice', to: 'dave', amount: 7_500 })),
  );

  // (5) Row locks. at-7 holds alice (bank A) and bob (bank B) from its phase 1 to its commit. Its
  // row shows the balances once both branches are prepared: in AT mode phase 1 already made the
  // change (the commit only releases the locks).
  const held = { from: 'alice', to: 'bob', amount: 2_000 };
  await transfer('alice -> bob 20.00 (prepared; holds alice and bob, commits later)', 'at-7', held, async () => {
    await client.begin({ mode: '2pc', gid: 'at-7', timeoutMs: 60_000 });
    for (const [n, branch] of branches(held).entries()) await client.addBranch('at-7', { ...branch, branchId: `b${n + 1}` });
    return client.get('at-7');
  });
  console.log('  at-7 (alice -> bob 20.00) prepared: it holds alice in bank A and bob in bank B until it ends');
  {
    // A plain write (open/reset the account, outside any global transaction) is refused.
    const aliceBefore = await dbA.image('alice');
    const plainA = await postJson<{ message?: string }>(`${bankA.url}/accounts`, { id: 'alice', balance: 1 });
    const plainB = await postJson<{ message?: string }>(`${bankB.url}/accounts`, { id: 'bob', balance: 1 });
    console.log(`  plain writes while held: POST /accounts alice -> ${plainA.status} (${plainA.body?.message ?? ''}); bob -> ${plainB.status}`);
    seen.push([`a plain write to a held account was refused: ${plainA.status} on bank A, ${plainB.status} on bank B, alice's row untouched`, plainA.status === 409 && plainB.status === 409 && (await dbA.image('alice')) === aliceBefore]);
  }
  const lockMove = { from: 'alice', to: 'bob', amount: 3_000 };
  const refused = await transfer('alice -> bob 30.00 while at-7 holds alice', 'at-8', lockMove, () => oneShot('at-8', lockMove));
  console.log(`  refused past the lock wait: ${refusalOf(refused)}`);
  const lockReason = reasonOf(refused, 'bank-a');
  seen.push([`the transfer on the held account failed cleanly: ${refused.status}, bank A refused its debit (${lockReason ?? 'no reason'})`, refused.status === 'rolled_back' && lockReason === 'at_lock_conflict']);

  const waitingMove = { from: 'alice', to: 'dave', amount: 4_000 };
  await transfer('alice -> dave 40.00 while at-7 holds alice, then at-7 commits', 'at-9', waitingMove, async () => {
    const startedAt = Date.now();
    let answeredAfter = -1;
    const second = oneShot('at-9', waitingMove).then((view) => {
      answeredAfter = Date.now() - startedAt;
      return view;
    });
    // Long enough for at-9's debit to meet at-7's lock, well within the bank's lock wait.
    await sleep(250);
    await client.commit('at-7', { wait: true });
    const committedAfter = Date.now() - startedAt;
    const view = await second;
    const how = view.status !== 'committed' ? `: ${refusalOf(view)}` : answeredAfter >= committedAfter ? ': it waited for alice and went on once at-7 committed' : '';
    console.log(`  at-7 committed ${committedAfter} ms after at-9 began; at-9 answered after ${answeredAfter} ms, ${view.status}${how}`);
    return view;
  });

  // The invariants: from the coordinator, then from each bank's own records.
  const views = new Map<string, TransactionView>();
  for (const gid of moves.keys()) views.set(gid, await finished(client, gid));
  const expected = new Map<string, number>(Object.values(OPENING).flatMap((accounts) => Object.entries(accounts)));
  for (const [gid, move] of moves) {
    if (views.get(gid)?.status !== 'committed') continue;
    expected.set(move.from, (expected.get(move.from) ?? 0) - move.amount);
    expected.set(move.to, (expected.get(move.to) ?? 0) + move.amount);
  }
  const a = await accountsOf(bankA);
  const b = await accountsOf(bankB);
  const accounts = [...a.accounts, ...b.accounts];
  const wrong = accounts.filter((acc) => acc.balance !== expected.get(acc.id));
  // The table shows how each transaction ended (at-7 was still open when its row was taken).
  for (const row of rows) {
    const view = views.get(row.gid);
    if (view) row.outcome = view.reason ? `${view.status} (${view.reason})` : view.status;
  }
  // Committed branches' undo and lock rows go in batches after the commit (and after a crash,
  // at the restarted bank's sweep): give that a moment before calling anything left over.
  const leftover = await until(
    'the AT clean-up',
    async () => {
      const rowsA = await dbA.atRows();
      const rowsB = await dbB.atRows();
      return rowsA.undo + rowsA.locks + rowsB.undo + rowsB.locks === 0 ? { rowsA, rowsB } : undefined;
    },
    20_000,
    250,
  ).catch(async () => ({ rowsA: await dbA.atRows(), rowsB: await dbB.atRows() }));

  printTable(
    ['transfer', 'gid', 'outcome', 'bank A before', 'bank A after', 'bank B before', 'bank B after'],
    rows.map((r) => [r.transfer, r.gid, r.outcome, money(r.aBefore), money(r.aAfter), money(r.bBefore), money(r.bAfter)]),
    3,
  );
  const finalTotal = a.totalBalance + b.totalBalance;
  const statusOf = (gid: string) => views.get(gid)?.status;
  const checks: [string, boolean][] = [
    ['every transaction ended (committed or rolled back)', [...views.values()].every((v) => v.status === 'committed' || v.status === 'rolled_back')],
    [`total money unchanged: ${money(initialTotal)} before, ${money(finalTotal)} after`, initialTotal === finalTotal],
    [
      `every account's balance exactly as the committed transfers make it${wrong.length > 0 ? `: ${wrong.map((acc) => `${acc.id} ${money(acc.balance)}, expected ${money(expected.get(acc.id) ?? 0)}`).join('; ')}` : ''}`,
      wrong.length === 0 && accounts.length === expected.size,
    ],
    ['the first transfer, the one after bank B died in phase 2 and the one after the coordinator died committed', statusOf('at-1') === 'committed' && statusOf('at-5') === 'committed' && statusOf('at-6') === 'committed'],
    ['the refused and the rolled-back transfers rolled back', statusOf('at-2') === 'rolled_back' && statusOf('at-3') === 'rolled_back' && statusOf('at-8') === 'rolled_back'],
    ...seen,
    [
      `the second transfer on alice ended cleanly once at-7 committed: ${statusOf('at-9')}`,
      statusOf('at-7') === 'committed' && (statusOf('at-9') === 'committed' || reasonOf(views.get('at-9'), 'bank-a') === 'at_lock_conflict'),
    ],
    [
      `no AT undo or lock rows left after the clean-up: bank A ${leftover.rowsA.undo} undo / ${leftover.rowsA.locks} lock, bank B ${leftover.rowsB.undo} undo / ${leftover.rowsB.locks} lock`,
      leftover.rowsA.undo + leftover.rowsA.locks + leftover.rowsB.undo + leftover.rowsB.locks === 0,
    ],
  ];
  console.log('\nInvariants:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'OK  ' : 'FAIL'} ${label}`);
  console.log('\nFinal balances (expected from the committed transfers):');
  for (const acc of accounts) console.log(`  ${acc.id.padEnd(6)} ${money(acc.balance).padStart(10)}  (${money(expected.get(acc.id) ?? 0)})`);
  return checks.every(([, ok]) => ok);
}
