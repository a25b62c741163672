/**
 * `npm run jepsen -- --fault <kind|all> --seed S --transfers N`: the fault suite beyond
 * `npm run chaos`, for the faults a process cannot inject from inside: network partitions,
 * clocks that are skewed and stepped, Postgres restarts, Postgres out of connections and
 * Postgres failover. Each kind runs two coordinator instances, two banks (each behind a
 * recorder that logs every call it receives: scripts/jepsen-recorder.ts), the suite's own
 * Postgres clusters and a private Redis; makes N transfers across tcc, 2pc, saga and msg (more
 * if some sub-kind of fault has not happened yet, bounded); injects its faults meanwhile
 * (reproducible from the seed: the same faults in the same order, the same transfers); heals
 * them; waits until every transaction has ended; and checks (scripts/lib/jepsen/checks.ts and
 * scripts/lib/transfer-checks.ts). A report per kind; exit 1 on any violation.
 *
 * Kinds: partition (hosts in network namespaces, cut with tc: packets dropped), clock (libfaketime),
 * pg-restart, pg-exhaustion, failover (scripts/lib/pg-failover.ts, when it is there).
 * Options: --fault (all), --seed (time), --transfers (200), --concurrency (6), --quick (faults half
 * as long and half as far apart: pg-restart every 2.5-10 s, say; CI's short run).
 *
 * Runs as root (ip netns, pg_createcluster). Its Postgres clusters are dtxjepsen* on ports
 * 5492/5493 (failover: 5481-5483), Redis on 6392; namespaces dtxj-*, addresses 10.231.0.0/24.
 * Whatever an interrupted run left is removed first; everything is removed on exit, on failure
 * and on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Mode } from '@nest-dtx/protocol';
import { option, prng, textOption } from './lib/run-options.js';
import { ManagedProcess, ROOT, accountsOf, coordinator, freePort, openAccount, participantService, sleep, until, type CoordinatorHandle, type ServiceHandle } from './lib/stack.js';
import { checkBankBalances, checkInvariants, emptyTally, preparedLeft, rollBackPrepared, type RecordTally, type SeenCall } from './lib/transfer-checks.js';
import { BANKS, FAULT_RUN_COORDINATOR_ENV, LEASE_MS, MSG_TIMEOUT_MS, OPENING_BALANCE, countErrorsInto, runTransfer, type Acknowledged, type Bank, type Leg, type TransferContext, type TransferShape } from './lib/transfers.js';
import { checkDeadlines, checkDecisions, checkLeases, type DeadlineFigures, type DecisionFigures, type FaultWindow, type LeaseFigures, type TimeoutEvent, type TxRow } from './lib/jepsen/checks.js';
import { startReplicatedPostgres, type ReplicatedPostgres } from './lib/pg-failover.js';
import {
  CLOCK_STEPS,
  EXHAUSTIONS,
  FAULT_KINDS,
  PARTITIONS,
  RESTARTS,
  clockFaults,
  exhaustionFaults,
  partitionFaults,
  restartFaults,
  setOffset,
  type FakeClock,
  type FaultKindName,
  type FaultLog,
} from './lib/jepsen/faults.js';
import { INSTALL_LEASE_LOG, readLeaseLog } from './lib/jepsen/lease-log.js';
import { NET_HOSTS, SUBNET, createNetwork, destroyNetwork } from './lib/jepsen/network.js';
import { APP_ROLE, SuiteCluster } from './lib/jepsen/postgres.js';
import { heldByNetwork, sentAtResume, type CutWindow, type PauseWindow, type RecordedCall } from './lib/jepsen/recorded-call.js';
import { libfaketime, missingFor } from './lib/jepsen/requirements.js';
import { CLUSTER_PREFIX, RUN_MARKER, killPids, markedProcesses, removeLeftovers } from './lib/jepsen/system.js';
import { LOOPBACK, NAMESPACES, launcher, placement, type Topology, type Where } from './lib/jepsen/topology.js';

const TX_TIMEOUT_MS = 8_000;
const COORD_PORT = 5492;
const BANKS_PORT = 5493;
const REDIS_PORT = 6392;
const FAILOVER_PORTS = { primaryPort: 5481, standbyPort: 5482, proxyPort: 5483 };
/** How long the suite waits for every transaction to end once the faults are healed. */
const HEAL_WAIT_MS = 120_000;
/** Past `--transfers`, transfers go on until every sub-kind of fault has happened: at most this many more, for at most this long. */
const EXTRA_TRANSFERS = 3_000;
const EXTRA_MS = 120_000;
const WORK_DIR = join(ROOT, '.data/jepsen');

export interface KindReport {
  kind: FaultKindName;
  seed: number;
  available: boolean;
  /** Why the kind did not run (a tool missing, the failover module absent). */
  reason?: string;
  transfers: number;
  extraTransfers: number;
  byMode: Record<string, number>;
  committed: number;
  rolledBack: number;
  notStarted: number;
  open: number;
  faults: Record<string, number>;
  /** What the faults did, as far as the suite could see it (connections refused to the coordinators, say). */
  observed: Record<string, number>;
  violations: number;
  violationSamples: string[];
  secondsToHeal: number;
  seconds: number;
  lease: LeaseFigures | null;
  deadlines: DeadlineFigures | null;
  decisions: DecisionFigures | null;
  rollbackReasons: Record<string, number>;
  checkBacks: Record<string, number>;
  clientErrors: Record<string, number>;
  /** Coordinator processes that exited by themselves (and were started again). */
  coordinatorExits: number;
  failover?: FailoverFigures;
}

interface FailoverFigures {
  /** Transactions the client had been told of (begun or decided) before the primary was killed. */
  acknowledgedBeforeKill: number;
  /** Rows of the coordinator's log read just before the kill (through the proxy). */
  snapshotRows: number;
  /** Decisions phase 2 had been sent for before the kill. */
  decisionsActedOnBeforeKill: number;
  lost: number;
  secondsToNewPrimary: number;
}

const emptyReport = (kind: FaultKindName, seed: number): KindReport => ({
  kind,
  seed,
  available: true,
  transfers: 0,
  extraTransfers: 0,
  byMode: {},
  committed: 0,
  rolledBack: 0,
  notStarted: 0,
  open: 0,
  faults: {},
  observed: {},
  violations: 0,
  violationSamples: [],
  secondsToHeal: 0,
  seconds: 0,
  lease: null,
  deadlines: null,
  decisions: null,
  rollbackReasons: {},
  checkBacks: {},
  clientErrors: {},
  coordinatorExits: 0,
});

const TRANSFER_MODES: readonly Mode[] = ['tcc', '2pc', 'saga', 'msg'];

/** The clusters a run uses, created once by the outer process. */
const clusters = {
  coord: (where: Where) => new SuiteCluster({ name: `${CLUSTER_PREFIX}`, port: COORD_PORT, maxConnections: 40, placement: where }),
  banks: (where: Where) => new SuiteCluster({ name: `${CLUSTER_PREFIX}banks`, port: BANKS_PORT, maxConnections: 100, placement: where }),
};

/** One fault kind, start to end: the stack, the transfers and the faults, the heal, the checks. */
async function runKind(kind: FaultKindName, seed: number, transfers: number, concurrency: number, quick: boolean): Promise<KindReport> {
  const report = emptyReport(kind, seed);
  const startedAt = Date.now();
  // The faults draw from one stream, each transfer from its own (seed and number): the same
  // seed gives the same faults in the same order and the same transfers, however the
  // transfers and the faults interleave in time.
  const random = prng(seed);
  const transferRandom = (i: number) => prng(Math.imul(seed ^ 0x9e3779b9, 31) + i * 7919);
  const pickWith = <T>(draw: () => number, items: readonly T[]): T => items[Math.floor(draw() * items.length)];
  const topology: Topology = kind === 'partition' ? NAMESPACES : LOOPBACK;
  const say = (line: string) => console.log(line);
  mkdirSync(WORK_DIR, { recursive: true });

  let failoverPg: ReplicatedPostgres | null = null;
  if (kind === 'failover') {
    failoverPg = await startReplicatedPostgres({ name: `${CLUSTER_PREFIX}failover`, ...FAILOVER_PORTS, synchronous: true });
  }
  const coordCluster = clusters.coord(topology.pg);
  const bankCluster = clusters.banks(topology.bankdb);
  const redis = new ManagedProcess(`jepsen-${kind}-redis`, '', {}, launcher(topology.redis)('redis-server', ['--port', String(REDIS_PORT), '--bind', topology.redis.address, '--save', '', '--appendonly', 'no']));
  const coordinators: CoordinatorHandle[] = [];
  const recorders: ManagedProcess[] = [];
  const banks = {} as Record<Bank, ServiceHandle>;
  const recordFiles: string[] = [];
  const clocks: FakeClock[] = [];
  let watching = false;
  let watchdog: Promise<void> = Promise.resolve();
  const bankDbUrls: string[] = [];
  try {
    if (!failoverPg) await coordCluster.start();
    await bankCluster.start();
    const coordDbName = 'dtx_coordinator';
    let coordDbUrl: string;
    let coordAdminUrl: string;
    if (failoverPg) {
      coordDbUrl = failoverPg.url;
      coordAdminUrl = failoverPg.url;
    } else {
      await coordCluster.freshDatabase(coordDbName);
      coordDbUrl = coordCluster.url(coordDbName, APP_ROLE);
      coordAdminUrl = coordCluster.url(coordDbName);
    }
    for (const bank of BANKS) {
      const name = bank.replace('-', '_');
      await bankCluster.freshDatabase(name);
      bankDbUrls.push(bankCluster.url(name));
    }
    redis.start();
    await sleep(300);

    // A coordinator listens beyond the loopback only with API_KEYS: one key, for the client, the banks and the checks.
    const apiKey = topology.netns ? randomBytes(24).toString('base64url') : undefined;
    const faketime = libfaketime();
    for (const [i, where] of topology.coordinators.entries()) {
      // clock: libfaketime under the instance, its offset in a file it rereads at every call
      // (FAKETIME_NO_CACHE); the monotonic clock is left alone, as NTP leaves it.
      const clockFile = join(WORK_DIR, `clock-c${i}`);
      const clockEnv: Record<string, string> =
        kind === 'clock' && faketime ? { LD_PRELOAD: faketime, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' } : {};
      const handle = await coordinator(
        `jepsen-${kind}-c${i}`,
        coordDbUrl,
        {
          INSTANCE_ID: `c${i}`,
          REDIS_URL: `redis://${topology.redis.address}:${REDIS_PORT}`,
          ...FAULT_RUN_COORDINATOR_ENV,
          PARTICIPANT_NETWORKS: topology.netns ? SUBNET : 'loopback',
          ...(apiKey ? { API_KEYS: `client+participant+admin:${apiKey}` } : {}),
          ...clockEnv,
        },
        placement(where, topology.netns ? 7070 : undefined),
      );
      if (kind === 'clock') {
        const clock: FakeClock = { coordinator: handle, instance: `c${i}`, file: clockFile, offsetSeconds: 0 };
        setOffset(clock, i === 0 ? 30 : -30);
        clocks.push(clock);
        report.faults[i === 0 ? 'skew_ahead_30s' : 'skew_behind_30s'] = 1;
      }
      coordinators.push(handle);
      await handle.start();
      // The first instance has made the schema: the trigger that logs each version and lease goes on it.
      if (i === 0) {
        const admin = new pg.Client({ connectionString: coordAdminUrl });
        await admin.connect();
        await admin.query(INSTALL_LEASE_LOG);
        await admin.end();
      }
    }
    for (const [i, bank] of BANKS.entries()) {
      const where = topology.banks[bank];
      const recorderPort = topology.netns ? 4101 : await freePort();
      const bankPort = topology.netns ? 4001 : await freePort();
      const file = join(WORK_DIR, `${kind}-${bank}.jsonl`);
      rmSync(file, { force: true });
      recordFiles.push(file);
      const recorder = new ManagedProcess(
        `jepsen-${kind}-recorder-${bank}`,
        '',
        { LISTEN_HOST: where.address, LISTEN_PORT: String(recorderPort), TARGET_HOST: where.address, TARGET_PORT: String(bankPort), RECORD_FILE: file, FLAKY_RATE: '0.04', SEED: String(seed + i + 1) },
        launcher(where)(process.execPath, [join(ROOT, 'dist/scripts/jepsen-recorder.js')]),
      );
      recorder.start();
      recorders.push(recorder);
      banks[bank] = await participantService('account', bank, bankDbUrls[i], coordinators[0].url, 'http', `http://${where.address}:${recorderPort}`, bankPort, apiKey, placement(where, bankPort));
      await banks[bank].start();
    }
    const accounts = Array.from({ length: 30 }, (_, i) => `acc-${i}`);
    for (const bank of BANKS) for (const id of accounts) await openAccount(banks[bank], id, OPENING_BALANCE);
    const initial = (await accountsOf(banks['bank-a'])).totalBalance + (await accountsOf(banks['bank-b'])).totalBalance;

    // A coordinator that exits by itself (no fault kills one) is counted and started again.
    watching = true;
    watchdog = (async () => {
      while (watching) {
        await sleep(500);
        for (const c of coordinators) {
          if (!watching || c.process.alive) continue;
          report.coordinatorExits++;
          say(`  ${c.process.name} exited by itself (see ${c.process.logFile}); starting it again`);
          await c.start().catch(() => undefined);
        }
      }
    })();

    // The transfers, and the faults meanwhile.
    const legsByGid = new Map<string, Leg[]>();
    const acknowledged = new Map<string, Acknowledged>();
    const clientError = countErrorsInto(report.clientErrors);
    const context: TransferContext = {
      random,
      accounts,
      bankUrl: (bank) => banks[bank].url,
      coordinatorUrls: () => coordinators.map((c) => c.url),
      legsByGid,
      clientError,
      msgTimeoutMs: MSG_TIMEOUT_MS,
      txTimeoutMs: TX_TIMEOUT_MS,
      ...(apiKey ? { apiKey } : {}),
    };
    const windows: FaultWindow[] = [];
    const cuts: CutWindow[] = [];
    const pauses: PauseWindow[] = [];
    let lastHealAt = Date.now();
    /**
     * Time to heal: from a heal on, how long until every transaction that existed then has ended
     * (those begun after it are the load going on, not the fault's doing). Watched from each heal;
     * a later heal replaces the watch.
     */
    interface HealWatch {
      from: number;
      endedAt: number;
      stopped: boolean;
    }
    const heal: { watch: HealWatch | null } = { watch: null };
    const poll = async (watch: HealWatch): Promise<void> => {
      while (!watch.stopped) {
        const client = new pg.Client({ connectionString: coordAdminUrl, connectionTimeoutMillis: 2_000 });
        client.on('error', () => undefined);
        // A new connection each round: Postgres may have restarted since the last.
        const left = await client
          .connect()
          .then(() => client.query<{ n: string }>(`SELECT count(*) AS n FROM global_transactions WHERE status NOT IN ('committed', 'rolled_back') AND created_at <= to_timestamp($1::float8 / 1000)`, [watch.from]))
          .then((r) => Number(r.rows[0].n))
          .catch(() => -1);
        await client.end().catch(() => undefined);
        if (left === 0) {
          watch.endedAt = Date.now();
          return;
        }
        await sleep(100);
      }
    };
    const watchHeal = (from: number): void => {
      if (heal.watch) heal.watch.stopped = true;
      const watch: HealWatch = { from, endedAt: 0, stopped: false };
      heal.watch = watch;
      void poll(watch);
    };
    const faultLog: FaultLog = {
      random,
      count: (name) => (report.faults[name] = (report.faults[name] ?? 0) + 1),
      scale: quick ? 0.5 : 1,
      note: (name, n) => (report.observed[name] = (report.observed[name] ?? 0) + n),
      paused: (instance, from, to) => pauses.push({ instance, from, to }),
      window: (name, from, to, cut) => {
        windows.push({ kind: name, from, to });
        if (cut) cuts.push({ ...cut, from, to });
      },
      healed: () => {
        lastHealAt = Date.now();
        watchHeal(lastHealAt);
      },
      log: say,
    };
    const subKinds: Record<FaultKindName, readonly string[]> = { partition: PARTITIONS, clock: CLOCK_STEPS, 'pg-restart': RESTARTS, 'pg-exhaustion': EXHAUSTIONS, failover: ['kill_primary'] };
    // Every sub-kind has happened, and the transfers went on for a while after the last heal.
    const allHappened = () => subKinds[kind].every((k) => (report.faults[k] ?? 0) > 0) && Date.now() - lastHealAt > 2_000;

    let next = 0;
    const extraUntil = Date.now() + EXTRA_MS;
    const wanted = () => next < transfers || (!allHappened() && next < transfers + EXTRA_TRANSFERS && Date.now() < extraUntil);
    const shapeOf = (draw: () => number): TransferShape => {
      const mode = pickWith(draw, TRANSFER_MODES);
      const amount = draw() < 0.1 ? 2 * OPENING_BALANCE : 1 + Math.floor(draw() * 5_000);
      const interactive = (mode === 'tcc' || mode === '2pc') && draw() < 0.3;
      const roll = draw();
      const leave = mode !== 'msg' ? undefined : roll < 0.1 ? ('after_local_commit' as const) : roll < 0.15 ? ('before_local_commit' as const) : undefined;
      return { mode, interactive, amount, ...(leave ? { leave } : {}) };
    };
    const worker = async () => {
      while (wanted()) {
        const i = next++;
        if (i >= transfers) report.extraTransfers++;
        const draw = transferRandom(i);
        const shape = shapeOf(draw);
        report.byMode[shape.mode] = (report.byMode[shape.mode] ?? 0) + 1;
        const gid = `jepsen-${kind}-${seed}-${i}`;
        const target = pickWith(draw, coordinators);
        const told = await runTransfer({ ...context, random: draw }, gid, shape, target.url);
        if (told) acknowledged.set(gid, told);
        // Spread over time: the faults come every few seconds.
        await sleep(20 + draw() * 60);
      }
    };
    let loadDone = false;
    // No new fault once the transfers are made and every sub-kind has happened (the last heal is then the last fault).
    const done = () => loadDone || (next >= transfers && subKinds[kind].every((k) => (report.faults[k] ?? 0) > 0));
    /** What the failover fault saw at the kill. */
    const atKill: { figures?: FailoverFigures; snapshot?: Map<string, string>; acknowledged: Map<string, Acknowledged>; at: number } = { acknowledged: new Map(), at: 0 };
    const faults = (async () => {
      switch (kind) {
        case 'partition':
          return partitionFaults(faultLog, done);
        case 'clock':
          return clockFaults(faultLog, clocks, LEASE_MS, done);
        case 'pg-restart':
          return restartFaults(faultLog, coordCluster, done);
        case 'pg-exhaustion':
          return exhaustionFaults(faultLog, coordCluster, coordDbName, done);
        case 'failover': {
          if (!failoverPg) return;
          const pg2 = failoverPg;
          await sleep(3_000 + random() * 3_000);
          // What was durable before the kill: every row of the log, read through the proxy.
          const snap = new pg.Client({ connectionString: pg2.url });
          await snap.connect();
          atKill.snapshot = new Map((await snap.query<{ gid: string; status: string }>('SELECT gid, status FROM global_transactions')).rows.map((r) => [r.gid, r.status]));
          await snap.end();
          atKill.acknowledged = new Map(acknowledged);
          const killAt = Date.now();
          atKill.at = killAt;
          await pg2.killPrimary();
          await pg2.promoteStandby();
          const newPrimary = await until('the new primary to answer through the proxy', async () => {
            const c = new pg.Client({ connectionString: pg2.url, connectionTimeoutMillis: 2_000 });
            c.on('error', () => undefined);
            try {
              await c.connect();
              const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
              return rows[0].r ? undefined : Date.now();
            } finally {
              await c.end().catch(() => undefined);
            }
          }, 60_000, 200);
          faultLog.window('kill_primary', killAt, newPrimary);
          faultLog.count('kill_primary');
          faultLog.healed();
          say(`  primary killed, standby promoted: the proxy reached the new primary after ${((newPrimary - killAt) / 1000).toFixed(1)} s`);
          atKill.figures = { acknowledgedBeforeKill: atKill.acknowledged.size, snapshotRows: atKill.snapshot.size, decisionsActedOnBeforeKill: 0, lost: 0, secondsToNewPrimary: (newPrimary - killAt) / 1000 };
          return;
        }
      }
    })();
    await Promise.all(Array.from({ length: concurrency }, worker));
    loadDone = true;
    await faults;
    report.transfers = next;

    // Heal: everything is back; every transaction must end.
    for (const clock of clocks) clock.coordinator.process.signal('SIGCONT');
    const db = new pg.Client({ connectionString: coordAdminUrl });
    db.on('error', () => undefined);
    await until('the coordinators\u2019 Postgres', async () => {
      await db.connect();
      return true;
    }, 60_000, 500);
    try {
      let allEndedAt = Date.now();
      const open = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM global_transactions WHERE status NOT IN ('committed', 'rolled_back')`)).rows[0].n);
      report.open = await until('every transaction to end', async () => {
        const n = await open();
        if (n === 0) allEndedAt = Date.now();
        return n === 0 ? 0 : undefined;
      }, HEAL_WAIT_MS, 100).catch(() => open());
      // Every transaction has ended: the watch of the last heal has seen its own end (or sees it now).
      const watch = heal.watch;
      if (watch) await until('the heal watch', () => Promise.resolve(watch.endedAt > 0 ? true : undefined), 10_000, 50).catch(() => undefined);
      if (watch) watch.stopped = true;
      report.secondsToHeal = Math.max(0, (watch?.endedAt || allEndedAt) - lastHealAt) / 1000;
      watching = false;
      await watchdog;

      // The recorders' files are complete once they stopped.
      await Promise.all(recorders.map((r) => r.kill('SIGTERM')));
      const calls: RecordedCall[] = recordFiles.flatMap((file, i) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => ({ ...(JSON.parse(line) as RecordedCall), bank: BANKS[i] })),
      );
      const late = (call: RecordedCall) => heldByNetwork(call, cuts);
      const atResume = (call: RecordedCall) => sentAtResume(call, pauses);
      const tally: RecordTally = emptyTally();
      const versions = await readLeaseLog(db);
      const excused = new Set<RecordedCall>();
      report.lease = checkLeases(calls.filter((c) => c.gid !== ''), versions, tally.violations, late, atResume, excused);
      const seen: SeenCall[] = calls
        .filter((c) => c.gid !== '' && !late(c) && !excused.has(c))
        .map((c) => ({ gid: c.gid, branchId: c.branchId, mode: c.mode, phase: c.phase, instance: c.sender, at: c.at }));
      await checkInvariants(db, tally, legsByGid, seen);
      const status = new Map((await db.query<{ gid: string; status: string }>(`SELECT gid, status FROM global_transactions`)).rows.map((r) => [r.gid, r.status]));
      await checkBankBalances(tally.violations, status, legsByGid, banks, initial);
      for (const [i, url] of bankDbUrls.entries()) for (const gid of await preparedLeft(url)) tally.violations.push({ gid, problem: `prepared transaction left in ${BANKS[i]}'s database` });

      const txs = new Map(
        (await db.query<{ gid: string; mode: Mode; status: string; reason: string | null; deadline: Date }>(`SELECT gid, mode, status, reason, deadline FROM global_transactions`)).rows.map((r) => [
          r.gid,
          { gid: r.gid, mode: r.mode, status: r.status, reason: r.reason, deadline: r.deadline.getTime() } satisfies TxRow,
        ]),
      );
      const timeouts: TimeoutEvent[] = (
        await db.query<{ gid: string; at: Date }>(`SELECT gid, at FROM transaction_events WHERE type = 'status' AND to_status = 'rolling_back' AND detail->>'reason' = 'timeout' ORDER BY id`)
      ).rows.map((r) => ({ gid: r.gid, at: r.at.getTime() }));
      report.decisions = checkDecisions(calls, txs, tally.violations);
      // Pauses and cuts hold things up; a constant skew does not excuse a late check-back.
      const checkAttempts = new Map(
        (
          await db.query<{ gid: string; at: Date }>(`SELECT gid, min(at) AS at FROM transaction_events WHERE type = 'call' AND detail->>'phase' = 'check' GROUP BY gid`)
        ).rows.map((r) => [r.gid, r.at.getTime()]),
      );
      report.deadlines = checkDeadlines(calls, txs, timeouts, windows, LEASE_MS, tally.violations, checkAttempts);

      const failover = atKill.figures;
      if (failover && atKill.snapshot) {
        const before: ReadonlyMap<string, string> = atKill.snapshot;
        const rank = (s: string | undefined) => (s === undefined ? -1 : s === 'active' ? 0 : s === 'committing' || s === 'rolling_back' ? 1 : 2);
        const direction = (s: string | undefined) => (s === 'committing' || s === 'committed' ? 'commit' : s === 'rolling_back' || s === 'rolled_back' ? 'rollback' : null);
        const lost = (gid: string, problem: string) => {
          failover.lost++;
          tally.violations.push({ gid, problem: `failover: ${problem}` });
        };
        for (const [gid, was] of before) {
          const now = status.get(gid);
          if (rank(now) < rank(was)) lost(gid, `was ${was} before the kill, ${now ?? 'gone'} after`);
          else if (direction(was) && direction(now) !== direction(was)) lost(gid, `decided ${was} before the kill, ended ${now ?? 'gone'}`);
        }
        for (const [gid, told] of atKill.acknowledged) {
          const now = status.get(gid);
          if (now === undefined) lost(gid, `the client was told ${told.view.status} before the kill; the transaction is gone`);
          else if (direction(told.view.status) && direction(now) !== direction(told.view.status)) lost(gid, `the client was told ${told.view.status} before the kill; it ended ${now}`);
        }
        const actedOn = new Map<string, 'commit' | 'rollback'>();
        for (const call of calls) {
          if (call.at >= atKill.at || call.injected || !/^(confirm|commit|cancel|rollback|compensate)$/.test(call.phase)) continue;
          actedOn.set(call.gid, /^(confirm|commit)$/.test(call.phase) ? 'commit' : 'rollback');
        }
        failover.decisionsActedOnBeforeKill = actedOn.size;
        for (const [gid, decided] of actedOn) if (direction(status.get(gid)) !== decided) lost(gid, `phase 2 (${decided}) was sent before the kill; it ended ${status.get(gid) ?? 'gone'}`);
        report.failover = failover;
      }

      report.committed = tally.committed;
      report.rolledBack = tally.rolledBack;
      report.notStarted = tally.notStarted;
      report.rollbackReasons = tally.rollbackReasons;
      report.checkBacks = tally.checkBacks;
      report.violations = tally.violations.length;
      report.violationSamples = tally.violations.slice(0, 25).map((v) => `${v.gid}: ${v.problem}`);
    } finally {
      await db.end().catch(() => undefined);
    }
  } finally {
    watching = false;
    await watchdog.catch(() => undefined);
    for (const c of coordinators) c.process.signal('SIGCONT');
    await Promise.all([...Object.values(banks).map((b) => b.process.kill('SIGKILL')), ...coordinators.map((c) => c.process.kill('SIGKILL')), ...recorders.map((r) => r.kill('SIGKILL'))]);
    await redis.kill('SIGKILL');
    for (const url of bankDbUrls) await rollBackPrepared(url).catch(() => undefined);
    if (failoverPg) await Promise.resolve(failoverPg.stop()).catch(() => undefined);
    else await coordCluster.stop('immediate');
    await bankCluster.stop('immediate');
  }
  report.seconds = (Date.now() - startedAt) / 1000;
  return report;
}

const fmt = (record: Record<string, number>): string =>
  Object.entries(record)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

function printReport(r: KindReport): void {
  console.log(`\n== jepsen ${r.kind} (seed ${r.seed})`);
  if (!r.available) {
    console.log(`  ${r.reason ?? 'not available'}`);
    console.log(`JEPSEN_REPORT ${JSON.stringify(r)}`);
    return;
  }
  console.log(`  transfers: ${r.transfers} (${r.extraTransfers} past --transfers until every fault had happened); by mode: ${fmt(r.byMode)}`);
  console.log(`  ended: committed ${r.committed}, rolled back ${r.rolledBack} (${fmt(r.rollbackReasons)}), never begun ${r.notStarted}, still open ${r.open}`);
  console.log(`  faults injected: ${fmt(r.faults)}${Object.keys(r.observed).length > 0 ? `; observed: ${fmt(r.observed)}` : ''}`);
  console.log(`  time to heal (last fault healed -> every transaction terminal): ${r.secondsToHeal.toFixed(1)} s`);
  if (r.lease) {
    const l = r.lease;
    console.log(
      `  leases: ${l.leasedCalls} calls under a lease (${l.leasedPhase2Calls} phase-2): after another instance's claim ${l.afterClaim}, after the lease ran out ${l.afterExpiry}, ` +
        `latest relative to its lease's end ${l.closestToExpiryMs ?? '-'} ms; version not logged ${l.unmatched}; delivered after their sender gave up (held by the network through a cut) ${l.deliveredAfterSenderGaveUp} (${l.deliveredLateAfterClaim} after a claim); written as their sender was stopped, arriving as it resumed ${l.sentAtResume}`,
    );
  }
  if (r.deadlines) {
    const d = r.deadlines;
    console.log(
      `  deadlines: ${d.timeouts} timeout rollbacks, ${d.earlyTimeouts} early (earliest ${d.earliestTimeoutMs} ms before); ${d.checkBacks} check-backs, ${d.earlyCheckBacks} early (earliest ${d.earliestCheckBackMs} ms before); ` +
        `first check-back of ${d.checkedMessages} messages after the deadline: max ${d.firstCheckBackLatenessMs.max} ms, p50 ${d.firstCheckBackLatenessMs.p50}, p99 ${d.firstCheckBackLatenessMs.p99}; late (> 1 s, no fault) ${d.lateCheckBacks}`,
    );
  }
  if (r.decisions) console.log(`  decisions: ${r.decisions.phase2Received} phase-2 calls reached the banks; branches given both decisions ${r.decisions.bothDecisions}, given the wrong one ${r.decisions.wrongDecision}`);
  if (r.failover) {
    const f = r.failover;
    console.log(`  failover: new primary after ${f.secondsToNewPrimary.toFixed(1)} s; before the kill: ${f.acknowledgedBeforeKill} acknowledged to clients, ${f.snapshotRows} rows in the log, ${f.decisionsActedOnBeforeKill} decisions acted on; lost ${f.lost}`);
  }
  console.log(`  msg check-backs by outcome: ${fmt(r.checkBacks)}; coordinator exits: ${r.coordinatorExits}; client errors: ${fmt(r.clientErrors)}`);
  console.log(`  violations: ${r.violations}`);
  for (const v of r.violationSamples) console.log(`    ${v}`);
  console.log(`  (${r.seconds.toFixed(0)} s)`);
  console.log(`JEPSEN_REPORT ${JSON.stringify(r)}`);
}

/** The partition kind runs in a process of its own on the client host (its namespace): only from there are the hosts reachable. */
function runInClientNamespace(seed: number, transfers: number, concurrency: number, quick: boolean): Promise<KindReport> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      'ip',
      ['netns', 'exec', NET_HOSTS.client.ns, process.execPath, join(ROOT, 'dist/scripts/jepsen.js'), '--inner', 'partition', '--seed', String(seed), '--transfers', String(transfers), '--concurrency', String(concurrency), ...(quick ? ['--quick'] : [])],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    inner = child;
    let report: KindReport | null = null;
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.startsWith('JEPSEN_INNER ')) report = JSON.parse(line.slice('JEPSEN_INNER '.length)) as KindReport;
        else console.log(line);
      }
    });
    child.on('exit', (code) => {
      inner = null;
      if (report) resolve(report);
      else reject(new Error(`the partition run exited (${code ?? 'signal'}) without a report`));
    });
  });
}

let inner: ChildProcess | null = null;
let tearingDown: Promise<void> | null = null;

/** Everything this run made goes: its processes (by id), its namespaces, its clusters. */
function teardown(runId: string): Promise<void> {
  tearingDown ??= (async () => {
    inner?.kill('SIGTERM');
    await killPids(markedProcesses(runId));
    await destroyNetwork().catch(() => undefined);
    await removeLeftovers().catch(() => undefined);
  })();
  return tearingDown;
}

async function main(): Promise<number> {
  const seed = option('seed', Date.now() % 1_000_000_007);
  const transfers = option('transfers', 200);
  const concurrency = option('concurrency', 6);
  const quick = process.argv.includes('--quick');
  const innerKind = textOption('inner', '');
  if (innerKind === 'partition') {
    // The inner process of a partition run (the outer one made the network and the clusters, and removes them).
    const report = await runKind('partition', seed, transfers, concurrency, quick);
    console.log(`JEPSEN_INNER ${JSON.stringify(report)}`);
    return 0;
  }
  const fault = textOption('fault', 'all');
  const kinds: FaultKindName[] = fault === 'all' ? [...FAULT_KINDS] : (FAULT_KINDS as readonly string[]).includes(fault) ? [fault as FaultKindName] : [];
  if (kinds.length === 0) {
    console.error(`--fault must be one of ${FAULT_KINDS.join(', ')} or all`);
    return 2;
  }
  console.log(
    `jepsen: ${kinds.join(', ')}; seed ${seed}, ${transfers} transfers, concurrency ${concurrency}${quick ? ', quick' : ''} (rerun: npm run jepsen -- --fault ${fault} --seed ${seed} --transfers ${transfers}${quick ? ' --quick' : ''})`,
  );
  const runId = randomBytes(6).toString('hex');
  await removeLeftovers((line) => console.log(`  ${line}`));
  process.env[RUN_MARKER] = runId;
  const onSignal = (signal: NodeJS.Signals) => {
    console.log(`\n${signal}: removing what the run made`);
    void teardown(runId).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const reports: KindReport[] = [];
  try {
    const created = new Set<string>();
    for (const kind of kinds) {
      const missing = missingFor(kind);
      if (missing) {
        const skipped = { ...emptyReport(kind, seed), available: false, reason: `skipped: ${missing}` };
        printReport(skipped);
        reports.push(skipped);
        continue;
      }
      // The clusters are made once (initdb takes seconds) and started per kind, where the kind wants them.
      if (!created.has('clusters')) {
        await clusters.coord(LOOPBACK.pg).create();
        await clusters.banks(LOOPBACK.bankdb).create();
        created.add('clusters');
      }
      let report: KindReport;
      try {
        if (kind === 'partition') {
          await createNetwork();
          try {
            report = await runInClientNamespace(seed, transfers, concurrency, quick);
          } finally {
            await killPids(markedProcesses(runId));
            await destroyNetwork();
          }
        } else {
          report = await runKind(kind, seed, transfers, concurrency, quick);
        }
      } catch (error) {
        report = { ...emptyReport(kind, seed), violations: 1, violationSamples: [`the run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`] };
        await killPids(markedProcesses(runId));
      }
      printReport(report);
      reports.push(report);
    }
  } finally {
    await teardown(runId);
  }
  console.log('\n== summary');
  for (const r of reports) {
    console.log(
      `  ${r.kind.padEnd(14)} ${r.available ? `transfers ${String(r.transfers).padStart(5)}  faults ${String(Object.values(r.faults).reduce((a, b) => a + b, 0)).padStart(3)}  violations ${String(r.violations).padStart(3)}  open ${r.open}  heal ${r.secondsToHeal.toFixed(1)} s` : (r.reason ?? 'not available')}`,
    );
  }
  return reports.some((r) => r.violations > 0 || r.open > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`jepsen run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
