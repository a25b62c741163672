/**
 * `npm run chaos -- --transfers N --seed S`: the fault-injection runner. Starts several
 * coordinator instances (one Postgres, a private Redis) and two banks behind fault-injecting
 * proxies, runs N transfers across tcc, 2pc, saga, msg, AT and workflow while injecting faults at random
 * (reproducible from the seed), then waits for every transaction to end and checks the
 * invariants. Prints a report; exits non-zero on any violation.
 *
 * An AT transfer is a 2PC transaction whose
 * branches are the banks' AtAction methods (at-debit / at-credit: plain repository calls, the
 * SDK's triggers keep the undo images and row locks); some go in pairs on the same two accounts
 * at once, so that AT branches wait on each other's row locks under the faults. Besides
 * atomicity and the exact balances, the run checks at the end that the banks' databases keep no
 * AT undo or lock row of a finished transaction once their clean-up ran.
 *
 * Options: --transfers N (300), --seed S (time), --instances K (2), --concurrency C (8).
 *
 * A msg transfer is a two-phase message sent by the paying bank itself (POST /transfers/msg on the
 * account service: doAndSubmit of its local debit, the credit as the message's branch); some
 * leave the message to the coordinator's check-back (the bank's skipSubmit and failBeforeLocal
 * hooks), and every bank kill can cut one between its local commit and its submit.
 *
 * A workflow transfer is a workflow (mode workflow) hosted by the runner itself
 * (scripts/lib/workflow-transfers.ts: an HTTP server in this process, behind a fault proxy of its
 * own, registered like the banks): each leg a tcc step, then commit or rollback. The first one,
 * and some after it, stop after their first step as a host that crashed would, so that the
 * coordinator's resume (WORKFLOW_RESUME_MS 1 s here) runs them again and their steps replay; a
 * coordinator killed or crashed under a workflow's step leaves it to the same resume.
 *
 * Besides the N random transfers, each crash point of the coordinator is armed on one instance
 * and hit with a transfer made to reach it (counted apart in the report), so that a short run
 * still crashes the coordinator at every protocol step.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import type { Mode } from '@nest-dtx/protocol';
import { CRASH_POINTS, type CrashPoint } from '../apps/coordinator/src/engine/crash-points.js';
import { atRowsByGid } from './lib/at-rows.js';
import { PROCESS_FAULTS, PROXY_FAULTS, TRANSFER_KINDS, type FaultKind, type ProxyFault, type TransferKind } from './lib/chaos-faults.js';
import { option, prng } from './lib/run-options.js';
import { PHASE1, ROLLBACK_PHASES, checkBankBalances, checkInvariants, preparedLeft, rollBackPrepared, type SeenCall, type Violation } from './lib/transfer-checks.js';
import { BANKS, CALL_TIMEOUT_MS, FAULT_RUN_COORDINATOR_ENV, LEASE_MS, MSG_TIMEOUT_MS, OPENING_BALANCE, countErrorsInto, runTransfer, type Bank, type Leg, type TransferContext, type TransferShape } from './lib/transfers.js';
import { WorkflowTransferHost, type WorkflowHostFigures } from './lib/workflow-transfers.js';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import {
  ManagedProcess,
  accountsOf,
  coordinator,
  freePort,
  openAccount,
  participantService,
  sleep,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
} from './lib/stack.js';


interface Report {
  seed: number;
  transfers: number;
  /** Transfers made to reach an armed crash point, on top of `transfers`. */
  crashPointTransfers: number;
  /** Transfers past `transfers` made because some proxy fault had not happened yet (at most 2,000, for at most 90 s). */
  extraTransfers: number;
  committed: number;
  rolledBack: number;
  notStarted: number;
  faults: Record<string, number>;
  violations: Violation[];
  secondsFromLastFaultToAllEnded: number;
  phase2Calls: number;
  /** Rolled-back transactions by reason (client, timeout, branch_failed, admin). */
  rollbackReasons: Record<string, number>;
  /** Phase-1 calls that did not succeed, by outcome and error (what sent transactions to rollback). */
  phase1Failures: Record<string, number>;
  /** Why the client's begin (or its interactive calls) failed, by error; their transactions still had to end. */
  clientErrors: Record<string, number>;
  /** msg check-backs the coordinators made, by outcome (ok: the local transaction had committed; failed: it had not). */
  checkBacks: Record<string, number>;
  /** Transfers by kind (tcc, 2pc, saga, msg, at, workflow), crash-point transfers included, and how many of them committed. */
  transfersByKind: Record<string, number>;
  committedByKind: Record<string, number>;
  at: AtReport;
  workflow: WorkflowReport;
}

/** The workflow transfers' own figures: how they ended, and what their host (this process) saw. */
interface WorkflowReport extends WorkflowHostFigures {
  transfers: number;
  committed: number;
  rolledBack: number;
  notStarted: number;
}

/** The AT transfers' own figures. */
interface AtReport {
  transfers: number;
  committed: number;
  rolledBack: number;
  notStarted: number;
  /** Pairs of AT transfers run at once on the same two accounts, and how many of them both committed (one after the other's locks). */
  pairs: number;
  pairsBothCommitted: number;
  /** Phase-1 calls a bank refused because another global transaction held a row past its lock wait (at_lock_conflict). */
  lockConflicts: number;
  /** Undo and lock rows of finished transactions still in the banks' databases once the clean-up had its time. */
  undoLeft: number;
  locksLeft: number;
  /** From every transaction ended to no AT row left (the batched clean-up and the banks' sweeps). */
  secondsToCleanedUp: number;
}

interface ProxyOptions {
  /** The bank's port (it changes nothing across restarts, but is read per call). */
  target: () => number;
  random: () => number;
  /** Share of calls that get a fault while faults are on. */
  rate: number;
  count: (kind: FaultKind) => void;
  active: () => boolean;
  seen: SeenCall[];
  /** Fault kinds no proxy has injected yet: the first faults go round them, so a short run sees each. */
  unseen: Set<ProxyFault>;
  /** Whether the bank may be killed now (it is up, and was not killed a moment ago). */
  mayKillBank: () => boolean;
  /** Kills the bank with SIGKILL; it comes back by itself a moment later. */
  killBank: () => Promise<void>;
  /** Until when (Date.now()) the bank is slow (slow_participant): every call is held about CALL_TIMEOUT_MS first. */
  slowUntil: () => number;
}

interface HeldCall {
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  timer: NodeJS.Timeout;
}

/** An HTTP proxy in front of a bank that records every call, and loses, duplicates, delays, reorders and fails some. */
function faultProxy(options: ProxyOptions): Server {
  const { random, rate, count, active, seen, unseen } = options;
  /** Phase-1 calls held back until their branch's rollback phase went through (cancel_overtakes_try). */
  const held = new Map<string, HeldCall>();

  const forward = (path: string, headers: IncomingMessage['headers'], body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const port = options.target();
      const upstream = httpRequest(
        { host: '127.0.0.1', port, path, method: 'POST', headers: { ...headers, host: `127.0.0.1:${port}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: { 'content-type': res.headers['content-type'] ?? 'application/json' }, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });

  const release = (key: string): void => {
    const call = held.get(key);
    if (!call) return;
    held.delete(key);
    clearTimeout(call.timer);
    void forward(call.path, call.headers, call.body).catch(() => undefined);
  };

  const chooseFault = (phase: string): ProxyFault | null => {
    if (!active() || random() >= rate) return null;
    const fits = (kind: ProxyFault) =>
      kind === 'cancel_overtakes_try' ? PHASE1.has(phase) : kind.startsWith('kill_bank') ? options.mayKillBank() : true;
    const first = [...unseen].find(fits);
    if (first) {
      unseen.delete(first);
      return first;
    }
    const choices = PROXY_FAULTS.filter(fits);
    return choices[Math.floor(random() * choices.length)];
  };

  return createServer((req: IncomingMessage, res: ServerResponse) => {
    // When the call reached the proxy (its headers), before its body is read.
    const arrivedAt = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const path = req.url ?? '/';
        const call = (() => {
          try {
            return JSON.parse(body.toString('utf8')) as { gid: string; branchId: string; mode: string; phase: string };
          } catch {
            return null;
          }
        })();
        const phase = call?.phase ?? '';
        const key = call ? `${call.gid}/${call.branchId}` : '';
        if (call) seen.push({ gid: call.gid, branchId: call.branchId, mode: call.mode, phase, instance: String(req.headers['x-tx-coordinator'] ?? '?'), at: arrivedAt });
        const fault = call ? chooseFault(phase) : null;
        if (fault) count(fault);
        // A slow bank (slow_participant): held 60% to 115% of CALL_TIMEOUT_MS, so some answers come
        // just in time (slow), others just after the coordinator gave up on them (it still applies them).
        if (call && Date.now() < options.slowUntil()) await sleep(CALL_TIMEOUT_MS * (0.6 + random() * 0.55));
        try {
          if (fault === 'drop_call') return res.destroy();
          if (fault === 'answer_503') return res.writeHead(503).end('{"injected":true}');
          if (fault === 'cancel_overtakes_try') {
            // No answer: the coordinator's call times out and it rolls back. The try goes through
            // once the cancel has (or after a while, if the transaction took another path).
            held.set(key, { path, headers: req.headers, body, timer: setTimeout(() => release(key), 6_000) });
            return;
          }
          if (fault === 'kill_bank_before_apply') {
            await options.killBank();
            return res.destroy();
          }
          if (fault === 'delay_past_timeout') await sleep(CALL_TIMEOUT_MS + 300);
          if (fault === 'duplicate_call') await forward(path, req.headers, body).catch(() => undefined);
          const answer = await forward(path, req.headers, body);
          if (ROLLBACK_PHASES.has(phase) && held.has(key) && answer.status < 300) release(key);
          if (fault === 'drop_answer') return res.destroy();
          if (fault === 'kill_bank_after_apply') {
            await options.killBank();
            return res.destroy();
          }
          if (!res.destroyed) res.writeHead(answer.status, answer.headers).end(answer.body);
        } catch {
          if (!res.destroyed) res.writeHead(502).end('{"error":"bank unreachable"}');
        }
      })();
    });
  });
}

async function main(): Promise<number> {
  const transfers = option('transfers', 300);
  const seed = option('seed', Date.now() % 1_000_000_007);
  const instances = option('instances', 2);
  const concurrency = option('concurrency', 8);
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const report: Report = {
    seed, transfers, crashPointTransfers: 0, extraTransfers: 0, committed: 0, rolledBack: 0, notStarted: 0, faults: {}, violations: [],
    secondsFromLastFaultToAllEnded: 0, phase2Calls: 0, rollbackReasons: {}, phase1Failures: {}, clientErrors: {}, checkBacks: {}, transfersByKind: {}, committedByKind: {},
    at: { transfers: 0, committed: 0, rolledBack: 0, notStarted: 0, pairs: 0, pairsBothCommitted: 0, lockConflicts: 0, undoLeft: 0, locksLeft: 0, secondsToCleanedUp: 0 },
    workflow: { transfers: 0, committed: 0, rolledBack: 0, notStarted: 0, resumeCalls: 0, runsFromResume: 0, decidedByResume: 0, stoppedAfterFirstStep: 0, interrupted: {}, badSignatures: 0, stepAnswers: {} },
  };
  const count = (kind: FaultKind) => (report.faults[kind] = (report.faults[kind] ?? 0) + 1);
  // The proxies live in this process: a busy loop here delays when they see calls.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  console.log(`chaos: ${transfers} transfers, seed ${seed}, ${instances} coordinator instances (rerun: npm run chaos -- --transfers ${transfers} --seed ${seed} --instances ${instances} --concurrency ${concurrency})`);

  const dbs: TestDatabase[] = await Promise.all(['chaos_coord', 'chaos_bank_a', 'chaos_bank_b'].map((p) => createTestDatabase(p)));
  const redisPort = await freePort();
  const redis = new ManagedProcess('chaos-redis', '', {}, {
    program: 'redis-server',
    args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  });
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const coordinators: CoordinatorHandle[] = [];
  const banks = {} as Record<Bank, ServiceHandle>;
  const proxies: Server[] = [];
  const workflowHost = new WorkflowTransferHost({ name: 'chaos-workflow-host', coordinatorUrls: () => coordinators.map((c) => c.url) });
  const seen: SeenCall[] = [];
  /** Until when each bank is slow (slow_participant). */
  const slowUntil: Record<Bank, number> = { 'bank-a': 0, 'bank-b': 0 };
  let faulting = true;
  let lastFaultAt = Date.now();
  try {
    redis.start();
    await sleep(300);
    const env = {
      REDIS_URL: redisUrl,
      ...FAULT_RUN_COORDINATOR_ENV,
    };
    for (let i = 0; i < instances; i++) coordinators.push(await coordinator(`chaos-coordinator-${i}`, dbs[0].url, { ...env, INSTANCE_ID: `chaos-${i}` }));
    for (const c of coordinators) await c.start();

    /** A bank killed by a fault comes back after a short while; at most one kill every 10 s, or a bank would be down most of the run. */
    let lastBankKillAt = 0;
    const mayKillBank = (name: Bank) => banks[name].process.alive && Date.now() - lastBankKillAt > 10_000;
    const killBank = async (name: Bank): Promise<void> => {
      const bank = banks[name];
      lastBankKillAt = Date.now();
      lastFaultAt = Date.now();
      await bank.process.kill('SIGKILL');
      setTimeout(() => void bank.start().catch(() => undefined), 300 + random() * 700);
    };
    const unseenProxyFaults = new Set<ProxyFault>(PROXY_FAULTS);
    /** A fault proxy on a port of its own in front of `targetPort`; its port. Only the banks' may kill what is behind it. */
    const startProxy = async (targetPort: number, own: Pick<Parameters<typeof faultProxy>[0], 'unseen' | 'mayKillBank' | 'killBank' | 'slowUntil'>): Promise<number> => {
      const proxyPort = await freePort();
      const proxy = faultProxy({
        target: () => targetPort,
        random,
        rate: 0.08,
        count: (kind) => {
          count(kind);
          lastFaultAt = Date.now();
        },
        active: () => faulting,
        seen,
        ...own,
      });
      await new Promise<void>((r) => proxy.listen(proxyPort, '127.0.0.1', r));
      proxies.push(proxy);
      return proxyPort;
    };
    for (const [i, name] of BANKS.entries()) {
      const bankPort = await freePort();
      const proxyPort = await startProxy(bankPort, {
        unseen: unseenProxyFaults,
        mayKillBank: () => mayKillBank(name),
        killBank: () => killBank(name),
        slowUntil: () => (faulting ? slowUntil[name] : 0),
      });
      banks[name] = await participantService('account', name, dbs[i + 1].url, coordinators[0].url, 'http', `http://127.0.0.1:${proxyPort}`, bankPort);
      await banks[name].start();
    }
    // The workflow host, behind a proxy of its own: the coordinators' resume calls to it are
    // dropped, duplicated, delayed and failed as bank calls are (its process is never killed).
    {
      const hostPort = await freePort();
      const proxyPort = await startProxy(hostPort, {
        // The bank proxies go round every fault kind; this one draws at random.
        unseen: new Set<ProxyFault>(),
        mayKillBank: () => false,
        killBank: () => Promise.resolve(),
        slowUntil: () => 0,
      });
      await workflowHost.listen(hostPort);
      await workflowHost.register(`http://127.0.0.1:${proxyPort}`);
    }
    // Enough accounts that transfers rarely wait on each other's row locks (a prepared 2PC branch holds its lock until phase 2).
    const accounts = Array.from({ length: 50 }, (_, i) => `acc-${i}`);
    for (const bank of Object.values(banks)) for (const id of accounts) await openAccount(bank, id, OPENING_BALANCE);
    const initial = (await accountsOf(banks['bank-a'])).totalBalance + (await accountsOf(banks['bank-b'])).totalBalance;

    const legsByGid = new Map<string, Leg[]>();
    const atGids = new Set<string>();
    const kindByGid = new Map<string, TransferKind>();
    const atPairs: [string, string][] = [];
    const alive = () => coordinators.filter((c) => c.process.alive);
    const clientError = countErrorsInto(report.clientErrors);

    const transferContext: TransferContext = {
      random,
      accounts,
      bankUrl: (bank) => banks[bank].url,
      coordinatorUrls: () => coordinators.map((c) => c.url),
      legsByGid,
      clientError,
      msgTimeoutMs: MSG_TIMEOUT_MS,
      txTimeoutMs: 8_000,
      workflows: workflowHost,
    };
    /** One bank transfer as a client makes it (scripts/lib/transfers.ts), counted by kind. */
    const transfer = async (gid: string, shape: TransferShape, target: CoordinatorHandle): Promise<void> => {
      const kind: TransferKind = shape.at ? 'at' : shape.mode;
      report.transfersByKind[kind] = (report.transfersByKind[kind] ?? 0) + 1;
      kindByGid.set(gid, kind);
      if (shape.at) atGids.add(gid);
      await runTransfer(transferContext, gid, shape, target.url);
    };

    /**
     * Arms one crash point on one instance and sends it a transfer that reaches that step; the
     * instance dies there (SIGKILL) and is restarted. Other traffic to it may reach the step first.
     */
    const crashAt = async (point: CrashPoint, target: CoordinatorHandle): Promise<void> => {
      await target.process.kill('SIGKILL');
      target.process.start({ DTX_TEST_CRASH_AT: point });
      const exited = target.process.waitExit().then(() => true);
      await until(`${target.process.name} to answer`, async () => ((await fetch(`${target.url}/health/live`)).ok ? true : undefined), 15_000, 50).catch(() => undefined);
      const amount = () => 1 + Math.floor(random() * 5_000);
      // A workflow is aimed at after_begin (its host's begin goes again, to the other instance)
      // and, next to an interactive tcc, at after_branch_recorded: the instance dies with its
      // step recorded and not run, and the workflow's run stops after that step as if its host
      // had crashed too, leaving the rest to recovery (the step's try, then the resume).
      const shapes: TransferShape[] =
        point === 'after_begin'
          ? [{ mode: 'workflow', interactive: false, amount: amount() }]
          : point === 'after_branch_recorded'
            ? [{ mode: 'tcc', interactive: true, amount: amount() }, { mode: 'workflow', interactive: false, amount: amount(), leave: 'after_first_step' }]
            : point === 'during_compensation'
              ? [{ mode: 'saga', interactive: false, amount: 10 * OPENING_BALANCE }] // refused debit: compensation in two rounds
              : point === 'after_check_call'
                ? // A few messages left to their check-back, in case a fault takes one down another path.
                  Array.from({ length: 4 }, (): TransferShape => ({ mode: 'msg', interactive: false, amount: amount(), leave: 'after_local_commit' }))
                : [{ mode: 'tcc', interactive: false, amount: amount() }];
      // Whichever instance claims a transaction next (a msg's check-back, a saga's compensation
      // after a transient answer) may reach the step instead of the armed one, and one claim takes
      // every due row: CI once saw three rounds of check-backs go elsewhere. So the other
      // instances are held (SIGSTOP, as pause_coordinator does) while the armed one waits for the
      // step; a bank prepares its messages through its own coordinator (chaos-coordinator-0),
      // which may be one of them, so a msg round first waits for its prepares.
      const holdOthers = async (sent: Promise<unknown>[]): Promise<() => void> => {
        if (shapes.some((shape) => shape.mode === 'msg')) await Promise.race([Promise.allSettled(sent), sleep(MSG_TIMEOUT_MS)]);
        const held = alive().filter((c) => c !== target);
        for (const other of held) other.process.signal('SIGSTOP');
        return () => held.forEach((other) => other.process.signal('SIGCONT'));
      };
      // A faulted call can send the transfer down another path (a retry by the other instance,
      // say): then another one is sent, up to three.
      for (let attempt = 1; attempt <= 3; attempt++) {
        const sent = shapes.map((shape) => transfer(`chaos-${seed}-crash-${report.crashPointTransfers++}`, shape, target));
        const release = await holdOthers(sent);
        const reached = await Promise.race([exited, sleep(8_000).then(() => false)]).finally(release);
        if (reached) {
          count(`crash_point:${point}`);
          break;
        }
        console.log(`  (crash point ${point} armed on ${target.process.name} not reached by transfer ${attempt} in 8 s)`);
      }
      await target.process.kill('SIGKILL');
      await target.start();
    };

    // Process faults at random instants while the transfers run; the first ones go round every
    // kind, and the crash-point fault round every crash point.
    let crashPointsDone = 0;
    const pendingKinds = new Set<(typeof PROCESS_FAULTS)[number]>(PROCESS_FAULTS);
    const inject = async (kind: (typeof PROCESS_FAULTS)[number], target: CoordinatorHandle): Promise<void> => {
      switch (kind) {
        case 'kill_coordinator':
          await target.process.kill('SIGKILL');
          await sleep(200 + random() * 500);
          await target.start();
          break;
        case 'crash_point':
          await crashAt(CRASH_POINTS[crashPointsDone++ % CRASH_POINTS.length], target);
          break;
        case 'kill_participant': {
          const name = pick(BANKS);
          if (banks[name].process.alive) await killBank(name);
          break;
        }
        case 'pause_coordinator':
          target.process.signal('SIGSTOP');
          await sleep(LEASE_MS + 500);
          target.process.signal('SIGCONT');
          break;
        case 'cut_postgres': {
          const admin = new pg.Client({ connectionString: dbs[0].url });
          await admin.connect();
          await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'dtx-coordinator%'`, [dbs[0].name]);
          await admin.end();
          break;
        }
        case 'stop_redis':
          await redis.kill('SIGKILL');
          await sleep(1_000);
          redis.start();
          break;
        case 'slow_participant': {
          // One bank answers about CALL_TIMEOUT_MS late for 3 to 5 s, then is fast again.
          const name = pick(BANKS);
          const forMs = 3_000 + random() * 2_000;
          slowUntil[name] = Date.now() + forMs;
          await sleep(forMs);
          break;
        }
      }
    };
    const injectFaults = async (done: () => boolean) => {
      // Goes on after the transfers until every kind of fault and every crash point has happened.
      while (!done() || pendingKinds.size > 0 || crashPointsDone < CRASH_POINTS.length) {
        await sleep(300 + random() * 700);
        const first = [...pendingKinds][0];
        const kind = first ?? (crashPointsDone < CRASH_POINTS.length ? 'crash_point' : pick(PROCESS_FAULTS));
        pendingKinds.delete(kind);
        count(kind);
        lastFaultAt = Date.now();
        const target = pick(coordinators);
        await inject(kind, target).catch(async (error: unknown) => {
          console.log(`  (fault ${kind} did not go as planned: ${error instanceof Error ? error.message : String(error)}; restarting what is down)`);
          if (!target.process.alive) await target.start().catch(() => undefined);
        });
        lastFaultAt = Date.now();
      }
    };

    let next = 0;
    // A short run may end before every proxy fault happened (bank kills are 10 s apart, and a
    // fast coordinator gets through a few hundred transfers in less): then more transfers go,
    // bounded in count and in time.
    const extraUntil = Date.now() + 90_000;
    const wanted = () => next < transfers || (unseenProxyFaults.size > 0 && next < transfers + 2_000 && Date.now() < extraUntil);
    /** Whether a workflow transfer was drawn yet: the first one always stops after its first step, so that every run sees resumes. */
    let workflowDrawn = false;
    /** A random transfer's shape, `kind` drawn by the caller. */
    const shapeOf = (kind: TransferKind): TransferShape => {
      // AT runs as 2PC: the coordinator sees a 2pc transaction, the banks run their AtAction methods.
      const mode: Mode = kind === 'at' ? '2pc' : kind;
      // Now and then more than an account holds, so that some transfers are refused.
      const amount = random() < 0.1 ? 2 * OPENING_BALANCE : 1 + Math.floor(random() * 5_000);
      const interactive = (mode === 'tcc' || mode === '2pc') && random() < 0.3;
      // Some messages are left to the check-back: committed locally and never submitted, or never run locally.
      const roll = random();
      const leave =
        mode === 'msg'
          ? roll < 0.1 ? ('after_local_commit' as const) : roll < 0.15 ? ('before_local_commit' as const) : undefined
          : mode === 'workflow'
            ? !workflowDrawn || roll < 0.15 ? ('after_first_step' as const) : undefined
            : undefined;
      if (mode === 'workflow') workflowDrawn = true;
      return { mode, interactive, amount, ...(kind === 'at' ? { at: true } : {}), ...(leave ? { leave } : {}) };
    };
    const runTransfers = async () => {
      while (wanted()) {
        const i = next++;
        if (i >= transfers) report.extraTransfers++;
        const kind = pick<TransferKind>(TRANSFER_KINDS);
        const target = alive().length > 0 ? pick(alive()) : coordinators[0];
        if (kind === 'at' && random() < 0.25) {
          // Two AT transfers on the same two accounts at once (the next transfer's number for the
          // second): one holds the rows, the other waits, then proceeds or gives up.
          const rows = { from: pick(BANKS), debit: pick(accounts), credit: pick(accounts) };
          const j = next++;
          if (j >= transfers) report.extraTransfers++;
          atPairs.push([`chaos-${seed}-${i}`, `chaos-${seed}-${j}`]);
          await Promise.all([
            transfer(`chaos-${seed}-${i}`, { ...shapeOf(kind), rows }, target),
            transfer(`chaos-${seed}-${j}`, { ...shapeOf(kind), rows }, alive().length > 0 ? pick(alive()) : coordinators[0]),
          ]);
          continue;
        }
        await transfer(`chaos-${seed}-${i}`, shapeOf(kind), target);
      }
    };

    let transfersDone = false;
    const faults = injectFaults(() => transfersDone);
    await Promise.all(Array.from({ length: concurrency }, runTransfers));
    transfersDone = true;
    await faults;
    faulting = false;
    for (const c of coordinators) if (!c.process.alive) await c.start();
    await sleep(1_500); // banks killed by the last faults come back by themselves
    for (const bank of Object.values(banks)) if (!bank.process.alive) await bank.start().catch(() => undefined);
    if (!redis.alive) redis.start();

    // Quiescence: every transaction the coordinators know of ends.
    const db = new pg.Client({ connectionString: dbs[0].url });
    await db.connect();
    try {
      await until('every transaction to end', async () => {
        const open = await db.query<{ n: string }>(`SELECT count(*) AS n FROM global_transactions WHERE status NOT IN ('committed', 'rolled_back')`);
        return Number(open.rows[0].n) === 0 ? true : undefined;
      }, 180_000, 200).catch(() => undefined);
      report.secondsFromLastFaultToAllEnded = (Date.now() - lastFaultAt) / 1000;
      await checkInvariants(db, report, legsByGid, seen);

      // Atomicity, exactly once: each account holds its opening balance moved by the committed transfers only.
      const status = new Map((await db.query<{ gid: string; status: string }>(`SELECT gid, status FROM global_transactions`)).rows.map((r) => [r.gid, r.status]));
      await checkBankBalances(report.violations, status, legsByGid, banks, initial, (gid) => {
        const kind = kindByGid.get(gid) ?? '?';
        report.committedByKind[kind] = (report.committedByKind[kind] ?? 0) + 1;
      });
      for (const bankDb of dbs.slice(1)) {
        for (const gid of await preparedLeft(bankDb.url)) report.violations.push({ gid, problem: `prepared transaction left in ${bankDb.name}` });
      }
      report.at.pairs = atPairs.length;
      report.at.pairsBothCommitted = atPairs.filter((pair) => pair.every((gid) => status.get(gid) === 'committed')).length;
      await checkAt(db, report, atGids, status, dbs.slice(1));
      Object.assign(report.workflow, workflowHost.figures);
      for (const [gid, kind] of kindByGid) {
        if (kind !== 'workflow') continue;
        report.workflow.transfers++;
        const s = status.get(gid);
        if (s === 'committed') report.workflow.committed++;
        else if (s === 'rolled_back') report.workflow.rolledBack++;
        else if (s === undefined) report.workflow.notStarted++;
      }
    } finally {
      await db.end();
    }
  } finally {
    faulting = false;
    for (const proxy of proxies) proxy.close();
    workflowHost.close();
    await Promise.all([...Object.values(banks).map((b) => b.process.kill()), ...coordinators.map((c) => c.process.kill('SIGKILL'))]);
    await redis.kill('SIGKILL');
    for (const bankDb of dbs.slice(1)) await rollBackPrepared(bankDb.url);
    await Promise.all(dbs.map((d) => d.drop()));
  }

  console.log(`transfers: ${report.transfers} + ${report.crashPointTransfers} aimed at crash points + ${report.extraTransfers} until every proxy fault happened (committed ${report.committed}, rolled back ${report.rolledBack}, never begun ${report.notStarted})`);
  console.log(`by kind: ${Object.entries(report.transfersByKind).sort().map(([k, v]) => `${k} ${v} (committed ${report.committedByKind[k] ?? 0})`).join(', ')}`);
  console.log(
    `AT transfers: ${report.at.transfers} (committed ${report.at.committed}, rolled back ${report.at.rolledBack}, never begun ${report.at.notStarted}); ` +
      `pairs on the same rows at once: ${report.at.pairs} (both committed: ${report.at.pairsBothCommitted}); phase-1 calls refused past the lock wait: ${report.at.lockConflicts}; AT rows of finished transactions left: ${report.at.undoLeft} undo, ${report.at.locksLeft} lock ` +
      `(clean-up done ${report.at.secondsToCleanedUp.toFixed(1)} s after every transaction ended)`,
  );
  const wf = report.workflow;
  console.log(
    `workflow transfers: ${wf.transfers} (committed ${wf.committed}, rolled back ${wf.rolledBack}, never begun ${wf.notStarted}); stopped after their first step on purpose: ${wf.stoppedAfterFirstStep}; ` +
      `resume calls the host got: ${wf.resumeCalls}, runs they started: ${wf.runsFromResume} (decided ${wf.decidedByResume}); runs stopped undecided: ${Object.entries(wf.interrupted).map(([k, v]) => `${v}x ${k}`).join('; ') || 'none'}; resumes with a bad signature: ${wf.badSignatures}; ` +
      `step answers: ${Object.entries(wf.stepAnswers).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`,
  );
  console.log(`rolled back by reason: ${Object.entries(report.rollbackReasons).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`phase-1 calls that failed, by cause: ${Object.entries(report.phase1Failures).map(([k, v]) => `${v}x ${k}`).join('; ')}`);
  console.log(`faults injected: ${Object.entries(report.faults).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`client-side errors (the transactions still had to end): ${Object.entries(report.clientErrors).map(([k, v]) => `${v}x ${k}`).join('; ') || 'none'}`);
  console.log(`from the last fault to every transaction ended: ${report.secondsFromLastFaultToAllEnded.toFixed(1)} s`);
  console.log(`msg check-backs by outcome: ${Object.entries(report.checkBacks).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  console.log(`phase-2 calls checked for overlapping senders: ${report.phase2Calls} (the proxies' event loop lagged up to ${Math.round(loopDelay.max / 1e6)} ms)`);
  console.log(`violations: ${report.violations.length}`);
  for (const v of report.violations.slice(0, 20)) console.log(`  ${v.gid}: ${v.problem}${v.history ? ` ${JSON.stringify(v.history)}` : ''}`);
  console.log(`CHAOS_REPORT ${JSON.stringify({ ...report, violations: report.violations.length })}`);
  return report.violations.length === 0 ? 0 : 1;
}

/** How long the banks' AT clean-up may take once every transaction ended: past the SDK's leftover sweep (60 s), for rows a bank killed before its batched clean-up left. */
const AT_CLEANUP_WAIT_MS = 75_000;

/**
 * The AT transfers' figures, and the AT check: once every transaction has ended and the banks'
 * clean-up had its time, no bank database keeps an undo or lock row of a finished (or never
 * known) transaction. Rows of a transaction still open are its own violation already.
 */
async function checkAt(db: pg.Client, report: Report, atGids: ReadonlySet<string>, status: ReadonlyMap<string, string>, bankDbs: readonly TestDatabase[]): Promise<void> {
  const at = report.at;
  const conflicts = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM transaction_events WHERE type = 'call' AND detail->>'phase' = 'prepare' AND detail->>'outcome' <> 'ok' AND detail::text LIKE '%at_lock_conflict%'`,
  );
  at.lockConflicts = conflicts.rows[0].n;
  at.transfers = atGids.size;
  for (const gid of atGids) {
    const s = status.get(gid);
    if (s === 'committed') at.committed++;
    else if (s === 'rolled_back') at.rolledBack++;
    else if (s === undefined) at.notStarted++;
  }
  const clients = bankDbs.map((d) => new pg.Client({ connectionString: d.url }));
  try {
    for (const client of clients) await client.connect();
    const finished = (gid: string) => status.get(gid) === undefined || status.get(gid) === 'committed' || status.get(gid) === 'rolled_back';
    const leftovers = async () => {
      const found: { bank: string; gid: string; undo: number; locks: number }[] = [];
      for (const [i, client] of clients.entries()) {
        for (const [gid, rows] of await atRowsByGid(client)) if (finished(gid)) found.push({ bank: bankDbs[i].name, gid, ...rows });
      }
      return found;
    };
    const startedAt = Date.now();
    let left = await leftovers();
    while (left.length > 0 && Date.now() - startedAt < AT_CLEANUP_WAIT_MS) {
      await sleep(500);
      left = await leftovers();
    }
    at.secondsToCleanedUp = (Date.now() - startedAt) / 1000;
    for (const row of left) {
      at.undoLeft += row.undo;
      at.locksLeft += row.locks;
      report.violations.push({ gid: row.gid, problem: `${row.undo} AT undo and ${row.locks} AT lock row(s) left in ${row.bank} after the clean-up (transaction ${status.get(row.gid) ?? 'unknown to the coordinator'})` });
    }
  } finally {
    for (const client of clients) await client.end().catch(() => undefined);
  }
}

const HELP = `npm run chaos -- [options]: transfers of every kind (${TRANSFER_KINDS.join(', ')}) under injected faults, then the invariants checked
  --transfers N    random transfers to make (default 300), besides those aimed at crash points
  --seed S         the seed of every random choice (default: the time); a run prints how to rerun it
  --instances K    coordinator instances (default 2)
  --concurrency C  transfers at once (default 8)
  --help           print this text`;

(process.argv.includes('--help') ? Promise.resolve(console.log(HELP)).then(() => 0) : main()).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`chaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
