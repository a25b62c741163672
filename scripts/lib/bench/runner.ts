/**
 * One measured run: N transactions of one mode at concurrency C, first straight to the
 * participants (the direct baseline), then through the coordinator, with the CPU, Postgres and
 * drain probes around the coordinator part.
 */
import { sleep } from '../stack.js';
import { MODES, type Failure } from './modes.js';
import type { ModeName } from './options.js';
import type { BenchParticipants } from './participants.js';
import { drain, statusCounts, ticksToMs, totalCpuTicks, type PostgresProbe } from './probes.js';

export interface BenchTarget {
  /** One URL per coordinator instance; transactions go round-robin over them. */
  urls: string[];
  pids: number[];
  database: string;
  /** Every database of the bench (the coordinator's and the participants'). */
  ownDatabases: string[];
  parts: BenchParticipants;
  probe: PostgresProbe;
}

export interface RunResult {
  mode: ModeName;
  concurrency: number;
  instances: number;
  transactions: number;
  succeeded: number;
  failed: number;
  /** From the first request to the moment every transaction of the run was terminal. */
  seconds: number;
  /** From the first request to the last answer. */
  answeredSeconds: number;
  txPerSecond: number;
  direct: { txPerSecond: number; failed: number; seconds: number };
  ratio: number;
  p50Ms: number;
  p99Ms: number;
  coordinatorCpuMsPerTx: number;
  writeCommitsPerTx: number;
  xactCommitsPerTx: number | null;
  /** Transactions the run left rolled back (counted from the coordinator's stats). */
  rolledBack: number;
  /**
   * Databases other than the bench's whose sessions were busy during the run: their writes are
   * in the cluster-wide write commits too (and they took CPU from the machine).
   */
  foreignDatabases: string[];
  /** Transactions still not terminal when the drain gave up (0 normally). */
  undrained: number;
  /** Mode workflow: calls the coordinator made to the workflow host during the run (resumes; 0 in a sound run). Null for the other modes. */
  workflowResumes: number | null;
  firstError: string | null;
}

interface Batch {
  seconds: number;
  latencies: number[];
  succeeded: number;
  failed: number;
  firstError: string | null;
}

/**
 * Runs `total` transactions, `concurrency` at a time, each transaction i being `one(i)`; with
 * `stop`, no new one starts once it returns true (a run for a while rather than a count).
 */
export async function runBatch(total: number, concurrency: number, one: (i: number) => Promise<Failure>, stop?: () => boolean): Promise<Batch> {
  const latencies: number[] = [];
  let next = 0;
  let succeeded = 0;
  let failed = 0;
  let firstError: string | null = null;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total && !stop?.()) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        let done = false;
        try {
          const failure = await one(i);
          done = failure === null;
          firstError ??= failure;
        } catch (error) {
          firstError ??= error instanceof Error ? error.message : String(error);
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (done) succeeded++;
        else failed++;
      }
    }),
  );
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, latencies, succeeded, failed, firstError };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

let runCounter = 0;
const runTag = () => `${Date.now().toString(36)}-${(runCounter++).toString(36)}`;

/** The direct baseline of `mode`: the same participant calls, straight from the bench. */
export function runDirect(target: BenchTarget, mode: ModeName, total: number, concurrency: number): Promise<Batch> {
  const tag = `direct-${mode}-c${concurrency}-${runTag()}`;
  return runBatch(total, concurrency, (i) => MODES[mode].direct(`${tag}-${i}`, i, target.parts));
}

/** Transactions through the coordinator, until every one of them is terminal. */
async function runCoordinator(target: BenchTarget, mode: ModeName, total: number, concurrency: number) {
  const tag = `${mode}-c${concurrency}-i${target.urls.length}-${runTag()}`;
  const before = await statusCounts(target.urls[0]);
  const started = process.hrtime.bigint();
  const batch = await runBatch(total, concurrency, (i) => MODES[mode].viaCoordinator(target.urls[i % target.urls.length], `${tag}-${i}`, i, target.parts));
  const after = await drain(target.urls[0], before.nonTerminal);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    batch,
    seconds,
    rolledBack: (after.byStatus.rolled_back ?? 0) - (before.byStatus.rolled_back ?? 0),
    undrained: Math.max(0, after.nonTerminal - before.nonTerminal),
  };
}

/** A short unmeasured run of both sides, so that JIT, pools and sockets are warm. */
export async function warmUp(target: BenchTarget, mode: ModeName, total: number, concurrency: number): Promise<void> {
  if (total <= 0) return;
  await runDirect(target, mode, 5 * total, concurrency);
  await runCoordinator(target, mode, total, concurrency);
}

/** Postgres flushes an idle backend's statistics up to ~10 s late. */
const STATS_FLUSH_MS = 11_000;

export async function measure(target: BenchTarget, mode: ModeName, total: number, concurrency: number, xactCommits: boolean): Promise<RunResult> {
  const direct = await runDirect(target, mode, total, concurrency);

  let xactBefore = 0;
  if (xactCommits) {
    await sleep(STATS_FLUSH_MS);
    xactBefore = await target.probe.xactCommits(target.database);
  }
  const startedAt = new Date();
  const xidBefore = await target.probe.nextXid();
  const host = MODES[mode].usesWorkflow ? target.parts.workflowHost : undefined;
  const hostCallsBefore = host?.calls() ?? 0;
  const cpuBefore = totalCpuTicks(target.pids);
  const run = await runCoordinator(target, mode, total, concurrency);
  const cpuAfter = totalCpuTicks(target.pids);
  const workflowResumes = host ? host.calls() - hostCallsBefore : null;
  const xidAfter = await target.probe.nextXid();
  const foreignDatabases = await target.probe.busyDatabasesSince(startedAt, target.ownDatabases);
  let xactCommitsPerTx: number | null = null;
  if (xactCommits) {
    await sleep(STATS_FLUSH_MS);
    xactCommitsPerTx = ((await target.probe.xactCommits(target.database)) - xactBefore) / total;
  }

  const txPerSecond = run.batch.succeeded / run.seconds;
  const directTxPerSecond = direct.succeeded / direct.seconds;
  return {
    mode,
    concurrency,
    instances: target.urls.length,
    transactions: total,
    succeeded: run.batch.succeeded,
    failed: run.batch.failed,
    seconds: run.seconds,
    answeredSeconds: run.batch.seconds,
    txPerSecond,
    direct: { txPerSecond: directTxPerSecond, failed: direct.failed, seconds: direct.seconds },
    ratio: directTxPerSecond > 0 ? txPerSecond / directTxPerSecond : 0,
    p50Ms: percentile(run.batch.latencies, 50),
    p99Ms: percentile(run.batch.latencies, 99),
    coordinatorCpuMsPerTx: ticksToMs(cpuAfter - cpuBefore) / total,
    writeCommitsPerTx: (xidAfter - xidBefore) / total,
    xactCommitsPerTx,
    rolledBack: run.rolledBack,
    foreignDatabases,
    undrained: run.undrained,
    workflowResumes,
    firstError: run.batch.firstError ?? direct.firstError,
  };
}
