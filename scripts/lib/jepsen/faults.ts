/**
 * The jepsen suite's fault kinds, each a loop that injects faults of its kind while the
 * transfers run (and past them, until every sub-kind happened once), records when each one held
 * (a window) and when the last was healed.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import type { CoordinatorHandle } from '../stack.js';
import { sleep } from '../stack.js';
import { NET_HOSTS, applyCut, healCut, type Cut, type NetHost } from './network.js';
import { APP_ROLE, type SuiteCluster } from './postgres.js';

export const FAULT_KINDS = ['partition', 'clock', 'pg-restart', 'pg-exhaustion', 'failover'] as const;
export type FaultKindName = (typeof FAULT_KINDS)[number];

/** What a fault loop records, and reads of the run. */
export interface FaultLog {
  random: () => number;
  count(name: string): void;
  /** How long faults last and how far apart they are, relative to the kind's own times (1; `--quick`: 0.5). A pause past the lease is never shortened. */
  scale: number;
  /** Adds to a figure of what the faults did (not a fault of their own). */
  note(name: string, n: number): void;
  /** A fault held from `from` to `to`; a cut between an instance and a bank (or everything: '*') names them. */
  window(kind: string, from: number, to: number, cut?: { instance: string; peer: string }): void;
  /** An instance was stopped (SIGSTOP) at `from` and resumed (SIGCONT) at `to`. */
  paused(instance: string, from: number, to: number): void;
  /** The last fault was healed now. */
  healed(): void;
  log(line: string): void;
}

/** Sleeps `min`..`max` ms, drawn from the run's seed. */
const pause = (log: FaultLog, min: number, max: number): Promise<void> => sleep((min + log.random() * (max - min)) * log.scale);

/**
 * Runs `inject` for every sub-kind first (each once, in order), then for random ones, until
 * `done()` and every sub-kind happened.
 */
export async function faultLoop<T extends string>(log: FaultLog, kinds: readonly T[], done: () => boolean, between: [number, number], inject: (kind: T) => Promise<void>): Promise<void> {
  const pending = [...kinds];
  while (!done() || pending.length > 0) {
    await pause(log, between[0], between[1]);
    const kind = pending.shift() ?? kinds[Math.floor(log.random() * kinds.length)];
    await inject(kind);
    // Counted once healed: the transfers go on until every sub-kind has happened, and a while after.
    log.count(kind);
    log.healed();
  }
}

export const PARTITIONS = ['instance_postgres', 'instance_participant', 'instance_redis', 'instance_isolated'] as const;
type Partition = (typeof PARTITIONS)[number];

/** partition: one cut at a time, held 2 to 5 s, between 1 and 3 s apart. */
export function partitionFaults(log: FaultLog, done: () => boolean): Promise<void> {
  const instances = [NET_HOSTS.c0, NET_HOSTS.c1];
  const banks = [NET_HOSTS['bank-a'], NET_HOSTS['bank-b']];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(log.random() * items.length)];
  return faultLoop<Partition>(log, PARTITIONS, done, [1_000, 3_000], async (kind) => {
    const instance = pick(instances);
    const cut: Cut =
      kind === 'instance_postgres'
        ? { kind: 'pairs', pairs: [[instance, NET_HOSTS.pg]] }
        : kind === 'instance_participant'
          ? { kind: 'pairs', pairs: [[instance, pick(banks)]] }
          : kind === 'instance_redis'
            ? { kind: 'pairs', pairs: [[instance, NET_HOSTS.redis]] }
            : { kind: 'isolate', host: instance, others: Object.values(NET_HOSTS).filter((h: NetHost) => h !== instance) };
    const from = Date.now();
    await applyCut(cut);
    await pause(log, 2_000, 5_000);
    await healCut(cut);
    const names = cut.kind === 'isolate' ? `${cut.host.name} from everything` : cut.pairs.map(([a, b]) => `${a.name} <-> ${b.name}`).join(', ');
    log.log(`  cut ${names} for ${((Date.now() - from) / 1000).toFixed(1)} s`);
    const peer = cut.kind === 'isolate' ? '*' : cut.pairs[0][1].name;
    log.window(kind, from, Date.now(), { instance: instance.name, peer });
  });
}

export const CLOCK_STEPS = ['pause_step_back', 'pause_step_forward'] as const;
type ClockStep = (typeof CLOCK_STEPS)[number];

/** An instance's faked clock: libfaketime reads its offset from a file it rereads (FAKETIME_NO_CACHE). */
export interface FakeClock {
  coordinator: CoordinatorHandle;
  /** Its INSTANCE_ID, as its calls name it (x-tx-coordinator). */
  instance: string;
  file: string;
  offsetSeconds: number;
}

export function setOffset(clock: FakeClock, seconds: number): void {
  clock.offsetSeconds = seconds;
  writeFileSync(clock.file, `${seconds >= 0 ? '+' : ''}${seconds}s\n`);
}

/**
 * clock: the instances run skewed (+30 s and -30 s, set at their start); now and then one is
 * paused (SIGSTOP) past its lease, its clock stepped 20 s back or forward, and resumed.
 */
export function clockFaults(log: FaultLog, clocks: readonly FakeClock[], leaseMs: number, done: () => boolean): Promise<void> {
  return faultLoop<ClockStep>(log, CLOCK_STEPS, done, [2_000, 5_000], async (kind) => {
    const clock = clocks[Math.floor(log.random() * clocks.length)];
    const step = kind === 'pause_step_back' ? -20 : 20;
    const from = Date.now();
    clock.coordinator.process.signal('SIGSTOP');
    await sleep(leaseMs + 500);
    setOffset(clock, clock.offsetSeconds + step);
    clock.coordinator.process.signal('SIGCONT');
    log.paused(clock.instance, from, Date.now());
    log.log(`  ${clock.coordinator.process.name} paused ${((Date.now() - from) / 1000).toFixed(1)} s, clock stepped ${step > 0 ? '+' : ''}${step} s (now ${clock.offsetSeconds > 0 ? '+' : ''}${clock.offsetSeconds} s)`);
    log.window(kind, from, Date.now());
  });
}

export const RESTARTS = ['restart_immediate', 'restart_fast'] as const;
type Restart = (typeof RESTARTS)[number];

/** pg-restart: the coordinators' Postgres stopped (immediate or fast) and started again, every 5 to 20 s. */
export function restartFaults(log: FaultLog, cluster: SuiteCluster, done: () => boolean, between: [number, number] = [5_000, 20_000]): Promise<void> {
  return faultLoop<Restart>(log, RESTARTS, done, between, async (kind) => {
    const from = Date.now();
    await cluster.stop(kind === 'restart_immediate' ? 'immediate' : 'fast');
    await cluster.start();
    log.log(`  Postgres ${kind === 'restart_immediate' ? 'immediate' : 'fast'} restart: down ${((Date.now() - from) / 1000).toFixed(1)} s`);
    log.window(kind, from, Date.now());
  });
}

export const EXHAUSTIONS = ['connections_exhausted'] as const;

/** The role whose connections take every slot. */
export const HOG_ROLE = 'dtx_hog';

/**
 * pg-exhaustion: another client takes every connection slot Postgres has for non-superusers
 * (the coordinators connect as one), the coordinators' own connections are ended so that they
 * need new ones, and every slot that frees up is taken again, for 3 to 8 s.
 */
export function exhaustionFaults(log: FaultLog, cluster: SuiteCluster, database: string, done: () => boolean): Promise<void> {
  return faultLoop(log, EXHAUSTIONS, done, [2_000, 5_000], async () => {
    await cluster.admin('postgres', (c) => c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${HOG_ROLE}') THEN CREATE ROLE ${HOG_ROLE} LOGIN; END IF; END $$`));
    const hogs: pg.Client[] = [];
    const grab = async (): Promise<boolean> => {
      const client = new pg.Client({ connectionString: cluster.url('postgres', HOG_ROLE), connectionTimeoutMillis: 2_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        hogs.push(client);
        return true;
      } catch {
        await client.end().catch(() => undefined);
        return false;
      }
    };
    const logFile = cluster.logFile;
    const logFrom = existsSync(logFile) ? statSync(logFile).size : 0;
    const from = Date.now();
    while (await grab()) {
      // Every slot a non-superuser may have.
    }
    await cluster.admin('postgres', (c) => c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'dtx-coordinator%'`, [database]));
    const until = Date.now() + (3_000 + log.random() * 5_000) * log.scale;
    while (Date.now() < until) {
      await grab();
      await sleep(50);
    }
    await Promise.all(hogs.map((c) => c.end().catch(() => undefined)));
    log.log(`  Postgres out of connections for ${((Date.now() - from) / 1000).toFixed(1)} s (${hogs.length} taken by another client)`);
    log.window('connections_exhausted', from, Date.now());
    // The coordinators' refused connections, from the server's log (user@database FATAL ...).
    const text = existsSync(logFile) ? readFileSync(logFile).subarray(logFrom).toString('utf8') : '';
    const refusedToCoordinators = text.split('\n').filter((line) => line.includes(` ${APP_ROLE}@`) && /FATAL: .*(connection slots|too many clients)/.test(line)).length;
    log.note('connections refused to the coordinators', refusedToCoordinators);
  });
}
