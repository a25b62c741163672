/**
 * Every mode over every participant transport, end to end: a coordinator with Redis, RabbitMQ
 * and NATS, and five account services (banks) reached over HTTP, NestJS TCP, NestJS Redis,
 * NestJS RabbitMQ and NestJS NATS respectively.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mode, TransactionDetailView, TransactionView } from '@nest-dtx/protocol';
import { TransactionClient, type BranchRequest } from '@nest-dtx/sdk';
import {
  accountsOf,
  getJson,
  openAccount,
  until,
  type CoordinatorHandle,
  type ParticipantTransport,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import type { TestDatabase } from '../support/databases.js';
import { EVERY_TRANSPORT, historyOf, startTransportBanks } from '../support/transport-banks.js';

const TRANSPORTS = EVERY_TRANSPORT;

/** One leg of a transfer: which bank, debit or credit, which account, how much. */
interface Leg {
  bank: ParticipantTransport;
  action: 'debit' | 'credit';
  account: string;
  amount: number;
}

/**
 * The modes of the matrix, each with how a transfer begins in it. `refusable`: a bank may
 * refuse a leg (409), and the transaction then rolls back leaving balances as they were. A
 * `msg` entry (once the SDK sends messages) is added here with its own `begin` and
 * `refusable: false`: a message's branches are delivered until they take it.
 */
interface ModeCase {
  /** The case's name: the mode, or `at` (2PC on the banks' AT actions, at-debit and at-credit). */
  mode: Mode | 'at';
  refusable: boolean;
  begin: (gid: string, branches: BranchRequest[], wait: boolean) => Promise<TransactionView>;
}

const oneShot = (mode: 'tcc' | '2pc'): ModeCase => ({ mode, refusable: true, begin: (gid, branches, wait) => client.begin({ mode, gid, wait, branches }) });
const MODES: ModeCase[] = [
  oneShot('tcc'),
  oneShot('2pc'),
  {
    mode: 'at',
    refusable: true,
    begin: (gid, branches, wait) => client.begin({ mode: '2pc', gid, wait, branches: branches.map((b) => ({ ...b, action: `at-${b.action}` })) }),
  },
  {
    mode: 'saga',
    refusable: true,
    begin: (gid, branches, wait) =>
      client.begin({ mode: 'saga', gid, wait, steps: branches.map((b, i) => ({ name: `s${i + 1}`, participant: b.participant, action: b.action, payload: b.payload })) }),
  },
];

// The brokers are shared: the banks' queues and subjects carry this run's name, so another run
// of this file at the same time cannot take their calls.
const run = randomBytes(3).toString('hex');
let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let banks = new Map<ParticipantTransport, ServiceHandle>();
let client: TransactionClient;

const bankName = (t: ParticipantTransport) => `bank-${t}-${run}`;
const balance = async (t: ParticipantTransport, id: string) =>
  (await accountsOf(banks.get(t)!)).accounts.find((a) => a.id === id)?.balance;

const finished = (gid: string) =>
  until(`${gid} to finish`, async () => {
    const view = await client.get(gid);
    return view.status === 'committed' || view.status === 'rolled_back' ? view : undefined;
  }, 30_000, 100);

const legsOf = (legs: Leg[]): BranchRequest[] =>
  legs.map((l) => ({ participant: bankName(l.bank), action: l.action, payload: { accountId: l.account, amount: l.amount } }));

/** A transfer in `mode` (a one-shot tcc/2pc transaction, AT, a saga), with or without waiting. */
function transfer(mode: ModeCase['mode'], gid: string, legs: Leg[], wait = true): Promise<TransactionView> {
  const found = MODES.find((c) => c.mode === mode);
  if (!found) throw new Error(`mode ${mode} is not in the matrix`);
  return found.begin(gid, legsOf(legs), wait);
}

interface EventRow {
  type: string;
  branch_id: string | null;
  detail: { phase?: string; outcome?: string } | null;
}

const eventsOf = (gid: string) => historyOf<EventRow>(databases[0], gid);

beforeAll(async () => {
  ({ databases, coord, banks } = await startTransportBanks('modes', TRANSPORTS, bankName));
  client = new TransactionClient({ coordinatorUrl: coord.url });
});

afterAll(async () => {
  await Promise.all([...banks.values()].map((b) => b.process.kill()));
  await coord?.process.kill();
  // A database still holding prepared transactions cannot be dropped.
  for (const db of databases.slice(1)) {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    for (const row of (await c.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = current_database()')).rows) {
      await c.query(`ROLLBACK PREPARED '${row.gid}'`);
    }
    await c.end();
  }
  await Promise.all(databases.map((d) => d.drop()));
});

describe.each(MODES.map((c) => [c.mode, c] as const))('mode %s', (mode) => {
  it.each(TRANSPORTS)('commits a transfer debiting a bank over %s', async (from) => {
    const to = TRANSPORTS[(TRANSPORTS.indexOf(from) + 1) % TRANSPORTS.length];
    const payer = `${mode}-${from}-payer`;
    const payee = `${mode}-${from}-payee`;
    await openAccount(banks.get(from)!, payer, 1_000);
    await openAccount(banks.get(to)!, payee, 0);
    const view = await transfer(mode, `${mode}-${from}-ok`, [
      { bank: from, action: 'debit', account: payer, amount: 300 },
      { bank: to, action: 'credit', account: payee, amount: 300 },
    ]);
    expect(view.status).toBe('committed');
    expect(view.branches.every((b) => b.status === 'committed')).toBe(true);
    expect(await balance(from, payer)).toBe(700);
    expect(await balance(to, payee)).toBe(300);
    if (mode === 'at') {
      // Each prepare's answer carried the row it locked, over its transport (HTTP header, reply member).
      const detail = await getJson<TransactionDetailView>(`${coord.url}/admin/transactions/${mode}-${from}-ok`);
      expect(detail.branches.map((b) => b.locks && { count: b.locks.count, keys: b.locks.rows.map((r) => r.key), released: b.locks.releasedAt !== null })).toEqual([
        { count: 1, keys: [JSON.stringify([payer])], released: true },
        { count: 1, keys: [JSON.stringify([payee])], released: true },
      ]);
    }
  });
});

describe.each(MODES.filter((c) => c.refusable).map((c) => [c.mode, c] as const))('mode %s', (mode) => {
  it.each(TRANSPORTS)('rolls back on a business failure at a bank over %s and leaves balances as they were', async (from) => {
    const to = TRANSPORTS[(TRANSPORTS.indexOf(from) + 2) % TRANSPORTS.length];
    const payer = `${mode}-${from}-poor`;
    const payee = `${mode}-${from}-lucky`;
    await openAccount(banks.get(from)!, payer, 100);
    await openAccount(banks.get(to)!, payee, 50);
    // The credit goes first so that, in a saga, a step has run and must be compensated.
    const view = await transfer(mode, `${mode}-${from}-refused`, [
      { bank: to, action: 'credit', account: payee, amount: 500 },
      { bank: from, action: 'debit', account: payer, amount: 500 },
    ]);
    expect(view).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    expect(await balance(from, payer)).toBe(100);
    expect(await balance(to, payee)).toBe(50);
    const summary = await accountsOf(banks.get(from)!);
    expect(summary.totalFrozen).toBe(0);
  });
});

describe('saga', () => {
  it('runs independent steps in parallel and compensates in reverse dependency order after a failure in the middle', async () => {
    await openAccount(banks.get('http')!, 'dag-a', 1_000);
    await openAccount(banks.get('tcp')!, 'dag-b', 1_000);
    await openAccount(banks.get('redis')!, 'dag-poor', 10);
    await openAccount(banks.get('redis')!, 'dag-c', 0);
    const view = await client.begin({
      mode: 'saga',
      gid: 'dag-1',
      concurrent: true,
      wait: true,
      steps: [
        { name: 'debitA', participant: bankName('http'), action: 'debit', payload: { accountId: 'dag-a', amount: 100 } },
        { name: 'debitB', participant: bankName('tcp'), action: 'debit', payload: { accountId: 'dag-b', amount: 100 } },
        { name: 'creditC', participant: bankName('redis'), action: 'credit', payload: { accountId: 'dag-c', amount: 200 }, dependsOn: ['debitA', 'debitB'] },
        { name: 'debitPoor', participant: bankName('redis'), action: 'debit', payload: { accountId: 'dag-poor', amount: 500 }, dependsOn: ['creditC'] },
        { name: 'never', participant: bankName('http'), action: 'credit', payload: { accountId: 'dag-a', amount: 1 }, dependsOn: ['debitPoor'] },
      ],
    });
    expect(view).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    expect(await balance('http', 'dag-a')).toBe(1_000);
    expect(await balance('tcp', 'dag-b')).toBe(1_000);
    expect(await balance('redis', 'dag-c')).toBe(0);
    expect(await balance('redis', 'dag-poor')).toBe(10);

    const calls = (await eventsOf('dag-1')).filter((e) => e.type === 'call');
    const forward = calls.filter((e) => e.detail?.phase === 'execute').map((e) => e.branch_id);
    // debitA and debitB ran in the first wave, before creditC; `never` never ran forward.
    expect(forward.slice(0, 2).sort()).toEqual(['debitA', 'debitB']);
    expect(forward).not.toContain('never');
    const compensated = calls.filter((e) => e.detail?.phase === 'compensate' && e.detail.outcome === 'ok').map((e) => e.branch_id);
    const at = (step: string) => compensated.indexOf(step);
    expect(at('creditC')).toBeGreaterThan(at('debitPoor'));
    expect(at('debitA')).toBeGreaterThan(at('creditC'));
    expect(at('debitB')).toBeGreaterThan(at('creditC'));
  });

  it('resumes a saga after the coordinator is killed -9 in the middle, without applying a step twice', async () => {
    await openAccount(banks.get('http')!, 'mid-a', 1_000);
    await openAccount(banks.get('tcp')!, 'mid-b', 0);
    await openAccount(banks.get('redis')!, 'mid-c', 0);
    await coord.process.kill();
    await coord.start({ DTX_TEST_CRASH_AT: 'after_phase1_calls', DTX_TEST_CRASH_GID_PREFIX: 'mid-saga' });
    const answer = await client
      .begin({
        mode: 'saga',
        gid: 'mid-saga-1',
        wait: true,
        steps: [
          { name: 'debit', participant: bankName('http'), action: 'debit', payload: { accountId: 'mid-a', amount: 400 } },
          { name: 'creditB', participant: bankName('tcp'), action: 'credit', payload: { accountId: 'mid-b', amount: 150 } },
          { name: 'creditC', participant: bankName('redis'), action: 'credit', payload: { accountId: 'mid-c', amount: 250 } },
        ],
      })
      .then(() => 'answered', () => 'no answer');
    expect(answer).toBe('no answer');
    await coord.process.waitExit();
    // The first step ran at the bank, but the coordinator died before recording it.
    expect(await balance('http', 'mid-a')).toBe(600);
    await coord.start();
    const view = await finished('mid-saga-1');
    expect(view.status).toBe('committed');
    expect(await balance('http', 'mid-a')).toBe(600);
    expect(await balance('tcp', 'mid-b')).toBe(150);
    expect(await balance('redis', 'mid-c')).toBe(250);
  });
});

describe('2pc with prepared transactions', () => {
  it('commits prepared transactions after the coordinator is killed -9 between decision and commit', async () => {
    await openAccount(banks.get('http')!, 'xa-a', 1_000);
    await openAccount(banks.get('redis')!, 'xa-b', 0);
    await coord.process.kill();
    await coord.start({ DTX_TEST_CRASH_AT: 'after_decision', DTX_TEST_CRASH_GID_PREFIX: 'xa-crash' });
    const answer = await transfer('2pc', 'xa-crash-1', [
      { bank: 'http', action: 'debit', account: 'xa-a', amount: 250 },
      { bank: 'redis', action: 'credit', account: 'xa-b', amount: 250 },
    ]).then(() => 'answered', () => 'no answer');
    expect(answer).toBe('no answer');
    await coord.process.waitExit();
    // Prepared but not committed: the change is invisible until COMMIT PREPARED.
    expect(await balance('http', 'xa-a')).toBe(1_000);
    await coord.start();
    expect((await finished('xa-crash-1')).status).toBe('committed');
    expect(await balance('http', 'xa-a')).toBe(750);
    expect(await balance('redis', 'xa-b')).toBe(250);
  });
});
