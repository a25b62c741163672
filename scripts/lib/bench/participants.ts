/**
 * The two participants of every bench transaction: two "plain" participants (bare HTTP servers
 * answering 200 at once, plain-participant.ts) by default, or the demo account services
 * (bank-a pays, bank-b receives, each on its own fresh database) with `--participants sdk`.
 */
import { resolve } from 'node:path';
import { parseSigningSecret, type Json, type ParticipantRegistrationView, type ParticipantView } from '@nest-dtx/protocol';
import { createTestDatabase, type TestDatabase } from '../../../test/support/databases.js';
import { ManagedProcess, ROOT, accountService, freePort, openAccount, participantService, until, type ServiceHandle } from '../stack.js';
import { ParticipantControl } from './control.js';
import { getJson, postJson } from './http-client.js';
import type { ParticipantKind } from './options.js';
import type { WorkflowHost } from './workflow-host.js';

/** One side of a transaction: whom the coordinator (or the direct baseline) calls, with what. */
export interface BenchSide {
  participant: string;
  /** `{endpoint}/{action}/{phase}` is the participant call of PROTOCOL.md 5.1. */
  endpoint: string;
  action: string;
  /** The payload of transaction number `i` of a run. */
  payload(i: number): Json;
  /** Its signing key (from its registration answer): the direct baseline signs as the coordinator does. */
  keys: readonly Buffer[];
  /** Its action for mode msg (a message's branch, `execute` only). */
  msgAction: string;
  /** Its AT action (a 2PC action whose undo the SDK records): the banks' `at-debit` / `at-credit`. */
  atAction: string;
  /** Its knobs (latency, down, counters), when started `controlled`. */
  control?: ParticipantControl;
}

export interface BenchParticipants {
  kind: ParticipantKind;
  a: BenchSide;
  b: BenchSide;
  /** The check-back target of a bench message (asked only if a message outlives its deadline, which a bench run never lets happen). */
  msgCheck: { participant: string; action: string };
  /** The host of the bench's workflows, started by the bench only when a run has mode workflow. */
  workflowHost?: WorkflowHost;
  /** The Postgres databases the participants write to (none for plain ones). */
  databases: TestDatabase[];
  processes: ManagedProcess[];
  stop(): Promise<void>;
}

const PLAIN_ENTRY = resolve(ROOT, 'dist/scripts/lib/bench/plain-participant.js');
const PLAIN_ACTION = 'work';
/** The account service's action for mode msg. */
const BANK_MSG_ACTION = 'credit';

/**
 * A plain participant; `controlled`: with its knobs on a control port (and `upstream`: as the
 * latency and fault proxy in front of that real participant).
 */
async function startPlain(name: string, controlled = false, upstream?: string): Promise<{ process: ManagedProcess; endpoint: string; url: string; control?: ParticipantControl }> {
  const port = await freePort();
  const controlPort = controlled ? await freePort() : 0;
  const managed = new ManagedProcess(name, PLAIN_ENTRY, {
    PORT: String(port),
    ...(controlled ? { CONTROL_PORT: String(controlPort) } : {}),
    ...(upstream ? { UPSTREAM: upstream } : {}),
  });
  managed.start();
  const url = `http://127.0.0.1:${port}`;
  await managed.untilReady(`${name} to answer`, async () => {
    return (await getJson(`${url}/health`)).status === 200 ? true : undefined;
  });
  const control = controlled ? new ParticipantControl(name, port, `http://127.0.0.1:${controlPort}`) : undefined;
  if (control) await until(`${name}'s control port`, async () => ((await control.stats()) ? true : undefined));
  return { process: managed, endpoint: `${url}/tx`, url, control };
}

/** Registers a participant (the bench's coordinator has no API keys) and returns its signing key. */
async function register(coordinatorUrl: string, registration: Pick<ParticipantView, 'name' | 'transport' | 'endpoint' | 'actions'>): Promise<Buffer[]> {
  const answer = await postJson(`${coordinatorUrl}/v1/participants`, registration);
  if (answer.status !== 200 && answer.status !== 201) throw new Error(`registering ${registration.name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  // A coordinator built before signed calls (DTX_COORDINATOR_ENTRY) hands out no secret: the
  // baseline then calls unsigned, which only plain participants accept.
  const secret = (answer.body as Partial<ParticipantRegistrationView>).signingSecret;
  return secret === undefined ? [] : [parseSigningSecret(secret)];
}

/**
 * msg only when a run has a msg mode: a coordinator built before the mode (DTX_COORDINATOR_ENTRY)
 * refuses the registration otherwise, and the other modes are measured against it too.
 */
const plainRegistration = (name: string, endpoint: string, withMsg: boolean) => ({
  name,
  transport: 'http',
  endpoint,
  actions: [{ name: PLAIN_ACTION, modes: ['tcc' as const, '2pc' as const, 'saga' as const, ...(withMsg ? ['msg' as const] : [])] }],
});

/** The key of a participant that registered itself: the same registration sent again hands out the same secret. */
async function keyOf(coordinatorUrl: string, name: string): Promise<Buffer[]> {
  const listed = await getJson(`${coordinatorUrl}/v1/participants`);
  const own = (listed.body as ParticipantView[]).find((p) => p.name === name);
  if (!own) throw new Error(`${name} is not registered`);
  return register(coordinatorUrl, { name: own.name, transport: own.transport, endpoint: own.endpoint, actions: own.actions });
}

/**
 * Starts the participants; they register with the coordinator at `coordinatorUrl`. The banks get
 * `accounts` payers and payees; transaction i moves money from payer i mod accounts.
 * `controlled` (the overload bench): every side gets knobs (BenchSide.control): a plain one its
 * own, a bank a plain participant in front of it as its proxy (the coordinator calls the proxy,
 * which forwards to the bank; the bank itself has no latency hook).
 */
export async function startParticipants(kind: ParticipantKind, coordinatorUrl: string, withMsg: boolean, accounts = 64, controlled = false): Promise<BenchParticipants> {
  if (kind === 'plain') {
    const [a, b] = await Promise.all([startPlain('bench-a', controlled), startPlain('bench-b', controlled)]);
    const processes = [a.process, b.process];
    let keys: [Buffer[], Buffer[]];
    try {
      keys = [
        await register(coordinatorUrl, plainRegistration('bench-a', a.endpoint, withMsg)),
        await register(coordinatorUrl, plainRegistration('bench-b', b.endpoint, withMsg)),
      ];
    } catch (error) {
      await Promise.all(processes.map((p) => p.kill()));
      throw error;
    }
    return {
      kind,
      a: { participant: 'bench-a', endpoint: a.endpoint, action: PLAIN_ACTION, msgAction: PLAIN_ACTION, atAction: PLAIN_ACTION, payload: () => ({}), keys: keys[0], control: a.control },
      b: { participant: 'bench-b', endpoint: b.endpoint, action: PLAIN_ACTION, msgAction: PLAIN_ACTION, atAction: PLAIN_ACTION, payload: () => ({}), keys: keys[1], control: b.control },
      msgCheck: { participant: 'bench-a', action: PLAIN_ACTION },
      databases: [],
      processes,
      stop: () => Promise.all(processes.map((p) => p.kill())).then(() => undefined),
    };
  }

  const databases = await Promise.all(['bench_bank_a', 'bench_bank_b'].map((prefix) => createTestDatabase(prefix)));
  const banks: ServiceHandle[] = [];
  const proxies: Awaited<ReturnType<typeof startPlain>>[] = [];
  const stop = async () => {
    await Promise.all([...banks.map((bank) => bank.process.kill()), ...proxies.map((proxy) => proxy.process.kill())]);
    await Promise.all(databases.map((db) => db.drop()));
  };
  try {
    for (const [i, name] of ['bank-a', 'bank-b'].entries()) {
      if (!controlled) {
        banks.push(await accountService(name, databases[i].url, coordinatorUrl));
        continue;
      }
      const bankPort = await freePort();
      const proxy = await startPlain(`${name}-proxy`, true, `http://127.0.0.1:${bankPort}`);
      proxies.push(proxy);
      banks.push(await participantService('account', name, databases[i].url, coordinatorUrl, 'http', proxy.url, bankPort));
    }
    await Promise.all(banks.map((bank) => bank.start()));
    // One hot account would serialise every debit on its row lock (and XA holds it until commit):
    // transactions take turns over many accounts instead.
    for (let k = 0; k < accounts; k++) {
      await Promise.all([openAccount(banks[0], `payer-${k}`, 1_000_000_000_000), openAccount(banks[1], `payee-${k}`, 0)]);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const [keysA, keysB] = [await keyOf(coordinatorUrl, 'bank-a'), await keyOf(coordinatorUrl, 'bank-b')];
  return {
    kind,
    // A message's branches must succeed: both banks take theirs as a credit (the bank's msg action).
    a: { participant: 'bank-a', endpoint: `${banks[0].url}/tx`, action: 'debit', msgAction: BANK_MSG_ACTION, atAction: 'at-debit', payload: (i) => ({ accountId: `payer-${i % accounts}`, amount: 1 }), keys: keysA, control: proxies[0]?.control },
    b: { participant: 'bank-b', endpoint: `${banks[1].url}/tx`, action: 'credit', msgAction: BANK_MSG_ACTION, atAction: 'at-credit', payload: (i) => ({ accountId: `payee-${i % accounts}`, amount: 1 }), keys: keysB, control: proxies[1]?.control },
    msgCheck: { participant: 'bank-a', action: 'dtx-msg-check' },
    databases,
    processes: [...banks.map((bank) => bank.process), ...proxies.map((proxy) => proxy.process)],
    stop,
  };
}
