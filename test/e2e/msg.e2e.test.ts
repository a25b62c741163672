/**
 * Two-phase messages (mode msg, PROTOCOL.md 3.1) end to end: a coordinator with Redis, and
 * five account services (banks) reached over HTTP, NestJS TCP, Redis, RabbitMQ and NATS. A msg transfer
 * (the account service's POST /transfers/msg) debits the sending bank in its local transaction
 * and credits the other bank through the message's one branch (`@MsgAction credit`); the
 * coordinator's check-back reaches the sender over its own transport.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSigningSecret, signCall, type ParticipantRegistrationView, type ParticipantView, type PhaseCallBody, type TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import {
  accountsOf,
  getJson,
  openAccount,
  postJson,
  until,
  type CoordinatorHandle,
  type ParticipantTransport,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import type { TestDatabase } from '../support/databases.js';
import { EVERY_TRANSPORT, historyOf, startTransportBanks } from '../support/transport-banks.js';

const TRANSPORTS = EVERY_TRANSPORT;
/** The brokers are shared with whatever else runs on the machine: names of this run's own. */
const run = randomBytes(3).toString('hex');
/** Short, so that a check-back comes within seconds. */
const TIMEOUT_MS = 1500;

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let banks = new Map<ParticipantTransport, ServiceHandle>();
let client: TransactionClient;

const bankName = (t: ParticipantTransport) => `msg-bank-${t}-${run}`;
const next = (t: ParticipantTransport) => TRANSPORTS[(TRANSPORTS.indexOf(t) + 1) % TRANSPORTS.length];
const balance = async (t: ParticipantTransport, id: string) => (await accountsOf(banks.get(t)!)).accounts.find((a) => a.id === id)?.balance;

const settled = (gid: string, status: 'committed' | 'rolled_back' = 'committed') =>
  until(`${gid} to be ${status}`, async () => {
    const view = await client.get(gid);
    if (view.status === 'committed' || view.status === 'rolled_back') {
      if (view.status !== status) throw new Error(`${gid} ended ${view.status}`);
      return view;
    }
    return undefined;
  }, 30_000, 100);

interface MsgTransfer {
  gid: string;
  from: string;
  to: string;
  toParticipant: string;
  amount: number;
  timeoutMs?: number;
  skipSubmit?: boolean;
  failBeforeLocal?: boolean;
}

/** POST /transfers/msg at the sending bank. */
const send = (bank: ParticipantTransport, transfer: MsgTransfer) =>
  postJson<TransactionView & { error?: string; message?: string }>(`${banks.get(bank)!.url}/transfers/msg`, { timeoutMs: TIMEOUT_MS, ...transfer });

interface EventRow {
  type: string;
  branch_id: string | null;
  detail: { phase?: string; outcome?: string; reason?: string; cause?: string } | null;
}

const eventsOf = (gid: string) => historyOf<EventRow>(databases[0], gid);

const executeCalls = async (gid: string) => (await eventsOf(gid)).filter((e) => e.type === 'call' && e.detail?.phase === 'execute');

/** A bank's signing secret, as the coordinator hands it out: registering again exactly what it registered. */
async function signingKeyOf(t: ParticipantTransport): Promise<Buffer> {
  const mine = (await getJson<ParticipantView[]>(`${coord.url}/v1/participants`)).find((p) => p.name === bankName(t))!;
  const address = t === 'http' ? { endpoint: mine.endpoint } : t === 'tcp' ? { host: mine.host, port: mine.port } : {};
  const answer = await postJson<ParticipantRegistrationView>(`${coord.url}/v1/participants`, { name: mine.name, transport: mine.transport, ...address, actions: mine.actions });
  expect([200, 201]).toContain(answer.status);
  return parseSigningSecret(answer.body.signingSecret);
}

beforeAll(async () => {
  ({ databases, coord, banks } = await startTransportBanks('msg', TRANSPORTS, bankName));
  client = new TransactionClient({ coordinatorUrl: coord.url });
});

afterAll(async () => {
  await Promise.all([...banks.values()].map((b) => b.process.kill()));
  await coord?.process.kill();
  await Promise.all(databases.map((d) => d.drop()));
});

describe.each(TRANSPORTS)('a msg transfer sent by the bank reached over %s', (from) => {
  const to = next(from);
  const payer = (what: string) => `${from}-${what}-payer`;
  const payee = (what: string) => `${from}-${what}-payee`;

  it('doAndSubmit: debits in the local transaction, submits, and the credit arrives exactly once', async () => {
    await openAccount(banks.get(from)!, payer('ok'), 1_000);
    await openAccount(banks.get(to)!, payee('ok'), 0);
    const gid = `msg-ok-${from}`;
    const answer = await send(from, { gid, from: payer('ok'), to: payee('ok'), toParticipant: bankName(to), amount: 300 });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ gid, mode: 'msg' });
    expect(['committing', 'committed']).toContain(answer.body.status);
    const view = await settled(gid);
    expect(view.branches).toMatchObject([{ branchId: 'b1', participant: bankName(to), action: 'credit', status: 'committed' }]);
    expect(await balance(from, payer('ok'))).toBe(700);
    expect(await balance(to, payee('ok'))).toBe(300);
    expect((await executeCalls(gid)).filter((e) => e.detail?.outcome === 'ok')).toHaveLength(1);
    // Submitted in time: nobody had to ask the sender.
    expect((await eventsOf(gid)).some((e) => e.detail?.phase === 'check')).toBe(false);
  });

  it('a debit refused for insufficient funds rolls the message back: 409, nothing debited, nothing credited', async () => {
    await openAccount(banks.get(from)!, payer('poor'), 100);
    await openAccount(banks.get(to)!, payee('poor'), 50);
    const gid = `msg-poor-${from}`;
    const answer = await send(from, { gid, from: payer('poor'), to: payee('poor'), toParticipant: bankName(to), amount: 500 });
    expect(answer).toMatchObject({ status: 409, body: { error: 'BUSINESS_FAILURE' } });
    const view = await settled(gid, 'rolled_back');
    expect(view.reason).toBe('client');
    expect(await balance(from, payer('poor'))).toBe(100);
    // A rolled-back message was never sent to anyone.
    expect(await executeCalls(gid)).toEqual([]);
    expect(await balance(to, payee('poor'))).toBe(50);
  });

  it('a local commit never submitted: at the deadline the check-back answers 2xx, and the credit is delivered', async () => {
    await openAccount(banks.get(from)!, payer('late'), 1_000);
    await openAccount(banks.get(to)!, payee('late'), 0);
    const gid = `msg-late-${from}`;
    const answer = await send(from, { gid, from: payer('late'), to: payee('late'), toParticipant: bankName(to), amount: 250, skipSubmit: true });
    expect(answer).toMatchObject({ status: 201, body: { status: 'active' } });
    expect(await balance(from, payer('late'))).toBe(750);
    await settled(gid);
    expect(await balance(to, payee('late'))).toBe(250);
    const checks = (await eventsOf(gid)).filter((e) => e.type === 'call' && e.detail?.phase === 'check');
    expect(checks.map((e) => e.detail?.outcome)).toContain('ok');
  });

  it('a sender that never ran its local transaction: the check-back answers 409, the message is rolled back (timeout), and a late local transaction is refused', async () => {
    await openAccount(banks.get(from)!, payer('dead'), 1_000);
    await openAccount(banks.get(to)!, payee('dead'), 0);
    const gid = `msg-dead-${from}`;
    const transfer = { gid, from: payer('dead'), to: payee('dead'), toParticipant: bankName(to), amount: 400 };
    expect(await send(from, { ...transfer, failBeforeLocal: true })).toMatchObject({ status: 201, body: { status: 'active' } });
    const view = await settled(gid, 'rolled_back');
    expect(view.reason).toBe('timeout');
    const checks = (await eventsOf(gid)).filter((e) => e.type === 'call' && e.detail?.phase === 'check');
    expect(checks.map((e) => e.detail?.outcome)).toEqual(['failed']);
    // The sender wakes up and runs its local transaction for that message after all: the
    // check's marker refuses it, so no money leaves for a message nobody will deliver.
    expect(await send(from, { ...transfer, skipSubmit: true })).toMatchObject({ status: 409, body: { error: 'LOCAL_TRANSACTION_REFUSED' } });
    // And doAndSubmit with that gid does not even try.
    expect(await send(from, transfer)).toMatchObject({ status: 409, body: { error: 'TX_ALREADY_DECIDED' } });
    expect(await balance(from, payer('dead'))).toBe(1_000);
    expect(await executeCalls(gid)).toEqual([]);
    expect(await balance(to, payee('dead'))).toBe(0);
  });
});

describe('submit: a durable fan-out with no local transaction', () => {
  it('delivers every branch, over every transport, once', async () => {
    for (const t of TRANSPORTS) await openAccount(banks.get(t)!, `fanout-${t}`, 0);
    const message = client.msg({ gid: 'msg-fanout' });
    for (const t of TRANSPORTS) message.add(bankName(t), 'credit', { accountId: `fanout-${t}`, amount: 10 });
    const view = await message.submit({ wait: true });
    expect(view.status).toBe('committed');
    expect(view.branches.map((b) => b.status)).toEqual(TRANSPORTS.map(() => 'committed'));
    for (const t of TRANSPORTS) expect(await balance(t, `fanout-${t}`)).toBe(10);
  });
});

describe('a duplicate execute delivery credits once', () => {
  it('a replayed, correctly signed execute is answered with the stored result and changes nothing', async () => {
    await openAccount(banks.get('tcp')!, 'replay-payee', 0);
    const view = await client.msg({ gid: 'msg-replay' }).add(bankName('tcp'), 'credit', { accountId: 'replay-payee', amount: 70 }).submit({ wait: true });
    expect(view.status).toBe('committed');
    expect(await balance('tcp', 'replay-payee')).toBe(70);

    // The same call again, as a coordinator that lost the answer sends it, straight to the
    // bank's HTTP route (every transport answers through the same dispatcher and barrier).
    const body = JSON.stringify({ gid: 'msg-replay', branchId: 'b1', mode: 'msg', action: 'credit', phase: 'execute', payload: { accountId: 'replay-payee', amount: 70 } } satisfies PhaseCallBody);
    const key = await signingKeyOf('tcp');
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${banks.get('tcp')!.url}/tx/credit/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signCall([key], 'msg-replay/b1/execute', Date.now() / 1000, body) },
        body,
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ accountId: 'replay-payee', credited: 70 });
    }
    expect(await balance('tcp', 'replay-payee')).toBe(70);
  });

  it('an execute delivered again after the coordinator was killed -9 before recording it credits once', async () => {
    await openAccount(banks.get('redis')!, 'crash-payee', 0);
    await coord.process.kill();
    await coord.start({ DTX_TEST_CRASH_AT: 'after_phase2_calls', DTX_TEST_CRASH_GID_PREFIX: 'msg-crash' });
    const message = client.msg({ gid: 'msg-crash-1' }).add(bankName('redis'), 'credit', { accountId: 'crash-payee', amount: 90 });
    // The begin is answered before delivery starts; the coordinator dies right after the call.
    await message.submit().catch(() => undefined);
    expect(await coord.process.waitExit()).toBeNull();
    // Delivered, but the coordinator died before it recorded the answer.
    expect(await balance('redis', 'crash-payee')).toBe(90);
    await coord.start();
    await settled('msg-crash-1');
    expect(await balance('redis', 'crash-payee')).toBe(90);
    expect((await executeCalls('msg-crash-1')).filter((e) => e.detail?.outcome === 'ok')).toHaveLength(1);
  });
});
