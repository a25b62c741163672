/**
 * `npm run bench`: THE benchmark of the coordinator. Figures, never assertions; only 127.0.0.1
 * traffic. It starts one coordinator (the compiled dist/apps/coordinator, as a real process,
 * LOG_LEVEL=warn, RECOVERY_INTERVAL_MS=600000 so recovery polls stay out of the figures, no rate
 * limit) on a fresh database of the machine's Postgres (TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432), two participants, and measures every mode at several
 * concurrencies in one run:
 *
 *   saga             saga of two steps (bench-a then bench-b), answered once durable, wait: false
 *   saga-wait        the same with wait: true
 *   tcc              one-shot tcc of two branches, wait: false (answered at the commit point)
 *   tcc-interactive  begin, add branch a, add branch b, commit: four requests
 *   2pc-interactive  the same in mode 2pc
 *   xa               (--participants sdk only) one-shot 2pc on the banks' XA actions
 *   at               (--participants sdk only) one-shot 2pc on the banks' AT actions
 *   msg              a message of two branches: begin (prepared, check target given), then
 *                    submit (commit, wait: false), execute in the background: the two requests
 *                    doAndSubmit makes around the caller's local transaction (not measured)
 *   msg-submit       a message submitted at begin ("submit": true, wait: false), a fan-out
 *   workflow         a workflow (PROTOCOL.md 3.7) of two tcc steps, driven by the bench client as its
 *                    host would: begin, step a, step b (each tried as it is recorded), commit
 *                    (wait: false); its host (bench-workflow-host, a server inside the bench) is
 *                    only called for a resume, which the coordinator's WORKFLOW_RESUME_MS of an
 *                    hour keeps out of a run: every run counts the resumes, and says if any came
 *
 * A run is over when every one of its transactions is terminal (GET /admin/stats polled after the
 * last answer), so background phase 2 and saga steps count in its duration. Right before each
 * coordinator run, the same concurrency runs the "direct" baseline: the participant calls the
 * coordinator would make for that mode (saga: execute a then b; tcc: try a||b then confirm
 * a||b, and the same for workflow; 2pc: prepare a||b then commit a||b; msg: execute a||b), made by the bench client itself with the same
 * node:http keep-alive client. Per run it prints tx/s (committed transactions / duration),
 * direct tx/s, their ratio, p50/p99 of a client's whole transaction, coordinator CPU ms per
 * transaction (/proc utime+stime), "write commits/tx" (delta of the cluster's next transaction
 * id: every write transaction anyone made on the Postgres cluster, so keep it otherwise idle;
 * with sdk participants it includes the banks' own), xact_commit/tx of the coordinator's
 * database where measured (reads included; needs an 11 s stats flush before and after), and the
 * number of failed transactions (error status, network error, or rolled back).
 * Results go to .data/bench/results-<timestamp>.json and latest.json, a chart to
 * .data/bench/bench.svg, and to bench.png when /usr/bin/chromium is installed.
 *
 * Options:
 *   --participants plain|sdk  plain (default): two bare node:http servers (bench-a, bench-b,
 *                             scripts/lib/bench/plain-participant.ts) that answer 200 {} at once,
 *                             so only the coordinator costs; sdk: the demo account services
 *                             (bank-a debit, bank-b credit, each on its own fresh database)
 *   --modes a,b,...           modes to run (default: all of the above that the participants have)
 *   --concurrency 1,32        concurrencies to sweep (default 1,8,32,128)
 *   --transactions N          transactions per run (default 400 at concurrency 1, 2000 above)
 *   --warmup N                unmeasured transactions per mode before its runs, at the highest concurrency (default 1000;
 *                             the direct baseline warms up with five times as many)
 *   --xact-commits            measure xact_commit in every run (default: tcc at concurrency 1 and 32)
 *   --instances 1,2,4         horizontal runs instead of the sweep: the chosen modes (default tcc
 *                             and saga, at concurrency 32 unless --concurrency) against 1, then
 *                             2, then 4 coordinator instances on one database, sharing Redis
 *                             (REDIS_URL), requests spread round-robin over them (all four of an
 *                             interactive transaction to one instance), CPU summed over them
 *   --trace-sampling 0.1      the coordinator with OpenTelemetry tracing on (OTEL_* variables), sampling
 *                             this ratio of traces (parentbased_traceidratio), exporting spans and
 *                             metrics over OTLP http/protobuf to a sink on loopback that discards them
 *                             (scripts/lib/bench/otlp-sink.ts); default: tracing off
 *   --help                    print this text
 *
 * DTX_COORDINATOR_ENTRY=<path to another build's dist/apps/coordinator/src/main.js> measures
 * that build instead (e.g. a worktree of an older commit), with this harness.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import { REDIS_URL, coordinator, type CoordinatorHandle } from './lib/stack.js';
import { writeCharts } from './lib/bench/chart.js';
import { closeAgent, configureAgent } from './lib/bench/http-client.js';
import { MODES } from './lib/bench/modes.js';
import { DEFAULT_XACT_RUNS, parseOptions, transactionsFor, type BenchOptions, type ModeName } from './lib/bench/options.js';
import { OtlpSink } from './lib/bench/otlp-sink.js';
import { startParticipants, type BenchParticipants } from './lib/bench/participants.js';
import { startWorkflowHost } from './lib/bench/workflow-host.js';
import { CLOCK_TICKS_PER_SECOND, PostgresProbe } from './lib/bench/probes.js';
import { remarks, table, writeJson } from './lib/bench/report.js';
import { measure, warmUp, type BenchTarget, type RunResult } from './lib/bench/runner.js';

const COORDINATOR_ENV = {
  LOG_LEVEL: 'warn',
  // Recovery polls and retention passes are Postgres work of their own: keep them out of the runs.
  RECOVERY_INTERVAL_MS: '600000',
  RETENTION_INTERVAL_MS: '86400000',
  // The bench is one client address sending thousands of requests a second.
  RATE_LIMIT_PER_MINUTE: '0',
  // A workflow the bench drives is never quiet for an hour: no resume may call its host mid-run.
  WORKFLOW_RESUME_MS: '3600000',
};

function printHelp(): void {
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const header = /\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '';
  console.log(header.replace(/^ \* ?/gm, '').trim());
}

const xactRun = (options: BenchOptions, mode: ModeName, concurrency: number): boolean =>
  options.xactCommits || (options.instances === null && DEFAULT_XACT_RUNS.some((r) => r.mode === mode && r.concurrency === concurrency));

function progress(r: RunResult): string {
  const xact = r.xactCommitsPerTx === null ? '' : `, ${r.xactCommitsPerTx.toFixed(2)} xact_commit/tx`;
  const failed = r.failed + r.direct.failed > 0 ? `, FAILED ${r.failed} (direct ${r.direct.failed})` : '';
  const undrained = r.undrained > 0 ? `, ${r.undrained} NOT TERMINAL` : '';
  const resumes = r.workflowResumes === null ? '' : r.workflowResumes === 0 ? ', no resume' : `, ${r.workflowResumes} RESUMES`;
  const foreign = r.foreignDatabases.length > 0 ? ` (other databases busy: ${r.foreignDatabases.join(', ')})` : '';
  return (
    `  ${r.mode} c=${r.concurrency}${r.instances > 1 ? ` x${r.instances}` : ''}: ${r.txPerSecond.toFixed(0)} tx/s ` +
    `(direct ${r.direct.txPerSecond.toFixed(0)}), p99 ${r.p99Ms.toFixed(1)} ms, ${r.coordinatorCpuMsPerTx.toFixed(2)} CPU ms/tx, ` +
    `${r.writeCommitsPerTx.toFixed(2)} write commits/tx${foreign}${xact}${failed}${undrained}${resumes} [${r.seconds.toFixed(1)} s]`
  );
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) return printHelp();
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)} (see --help)`);
    process.exit(2);
  }
  const startedAt = new Date().toISOString();
  const instanceCounts = options.instances ?? [1];
  const maxConcurrency = Math.max(...options.concurrencies);
  configureAgent(Math.max(64, 2 * maxConcurrency));

  const coordinators: CoordinatorHandle[] = [];
  let database: TestDatabase | null = null;
  let parts: BenchParticipants | null = null;
  let probe: PostgresProbe | null = null;
  const sink = options.traceSampling === null ? null : new OtlpSink();
  const cleanup = async () => {
    await Promise.allSettled([parts?.stop(), parts?.workflowHost?.stop(), ...coordinators.map((c) => c.process.kill())]);
    await sink?.stop();
    await probe?.close().catch(() => undefined);
    await database?.drop().catch(() => undefined);
    closeAgent();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));

  try {
    database = await createTestDatabase('bench_coord');
    await sink?.start();
    const tracing: Record<string, string> = sink
      ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: String(options.traceSampling) }
      : {};
    const coordDb = database;
    // One after another, each answering /health/live before the next starts: no migration races.
    const startInstance = async () => {
      const name = `bench-coordinator-${coordinators.length + 1}`;
      const handle = await coordinator(name, coordDb.url, { ...COORDINATOR_ENV, ...tracing, INSTANCE_ID: name, ...(options.instances ? { REDIS_URL } : {}) });
      coordinators.push(handle);
      await handle.start();
    };
    await startInstance();
    const withMsg = options.modes.some((mode) => MODES[mode].usesMsg === true);
    parts = await startParticipants(options.participants, coordinators[0].url, withMsg, Math.max(64, 4 * maxConcurrency));
    if (options.modes.some((mode) => MODES[mode].usesWorkflow === true)) parts.workflowHost = await startWorkflowHost(coordinators[0].url);
    probe = await PostgresProbe.open();

    console.log(
      `nest-dtx bench: ${availableParallelism()} cores, node ${process.version}; coordinator dist/apps/coordinator on Postgres ` +
        `${options.instances ? `with ${instanceCounts.join(', then ')} instances sharing Redis` : '(one instance)'}; ` +
        `participants ${options.participants === 'plain' ? 'plain (bench-a, bench-b: bare HTTP servers answering 200 at once)' : 'sdk (bank-a debit, bank-b credit: the demo account services)'}; ` +
        `every figure from the bench client's side over 127.0.0.1; ` +
        `tracing ${sink ? `on, sampling ${options.traceSampling}, exported to an OTLP sink on loopback` : 'off'}.`,
    );
    for (const mode of options.modes) console.log(`  ${mode}: ${MODES[mode].description}`);

    const results: RunResult[] = [];
    for (const count of instanceCounts) {
      while (coordinators.length < count) await startInstance();
      const running = coordinators.slice(0, count);
      const target: BenchTarget = {
        urls: running.map((c) => c.url),
        pids: running.map((c) => c.process.child?.pid ?? 0),
        database: coordDb.name,
        ownDatabases: [coordDb.name, ...parts.databases.map((db) => db.name)],
        parts,
        probe,
      };
      for (const mode of options.modes) {
        // At the sweep's highest concurrency, so that JIT, connection pools and keep-alive sockets are as the runs need them.
        await warmUp(target, mode, options.warmup, maxConcurrency);
        for (const concurrency of options.concurrencies) {
          const result = await measure(target, mode, transactionsFor(options, concurrency), concurrency, xactRun(options, mode, concurrency));
          results.push(result);
          console.log(progress(result));
        }
      }
    }

    console.log('');
    console.log(table(results, options.instances !== null));
    for (const line of remarks(results)) console.log(line);
    if (options.instances) {
      for (const mode of options.modes) {
        for (const concurrency of options.concurrencies) {
          const line = results.filter((r) => r.mode === mode && r.concurrency === concurrency).map((r) => `${r.instances} instance(s) ${r.txPerSecond.toFixed(0)} tx/s`);
          console.log(`${mode} c=${concurrency}: ${line.join(', ')}`);
        }
      }
    }
    if (sink) console.log(`OTLP sink: ${sink.summary()}.`);
    const host = parts.workflowHost;
    if (host) console.log(`workflow host: ${host.calls()} call(s) from the coordinator in the whole bench, warm-ups included${host.calls() > 0 ? ` (${host.paths().join(', ')})` : ''}.`);
    if (options.participants === 'sdk') console.log("write commits/tx counts the banks' write transactions too (sdk participants write to Postgres).");
    const paths = writeJson({
      startedAt,
      machine: { cores: availableParallelism(), node: process.version, clockTicksPerSecond: CLOCK_TICKS_PER_SECOND },
      participants: options.participants,
      options,
      results,
    });
    console.log('');
    console.log(`results: ${paths.join(' and ')}`);
    for (const line of await writeCharts(results, options.instances !== null)) console.log(line);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
