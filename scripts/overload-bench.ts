/**
 * `npm run bench:overload`: the coordinator under overload, with slow, flooded and dead
 * participants. Figures, never assertions; only 127.0.0.1 traffic. It starts one coordinator
 * (the compiled dist/apps/coordinator as a real process, LOG_LEVEL=warn, no rate limit, recovery
 * at its default interval since retried calls need it) on a fresh database of the machine's
 * Postgres, and two participants with knobs (scripts/lib/bench/plain-participant.ts: latency,
 * down, counters, on a control port). Each scenario restarts the coordinator with its own
 * settings (so its /metrics counters start from zero); its clients send begins as the SDK's
 * TransactionClient does, waiting out each 503 OVERLOADED's Retry-After (plus up to a quarter)
 * for at most 60 s (scripts/lib/bench/overload.ts, on the bench's node:http client).
 *
 *   flood      N msg ("submit": true, wait: false, two branches) at client concurrency C against
 *              participants answering after --latency ms; then N sagas (two steps, wait: false).
 *              Prints begins accepted and 503 refusals, the time until every transaction was
 *              terminal, those that were not, calls not made (dtx_participant_calls_not_made_total
 *              by reason), the coordinator's peak RSS (/proc VmRSS, sampled every 250 ms), and per
 *              participant: calls received, the most it held at once, the peak of ESTABLISHED
 *              sockets from the coordinator's pid to it (/proc/net/tcp), of its gate's queue and limit.
 *   isolation  a one-shot tcc of one branch on B (wait: true) at concurrency 16, for
 *              --phase-seconds in each of four phases: idle (A and B at 10 ms); A flooded by msg
 *              to A at concurrency 64 (the flood's own load on the shared coordinator and
 *              Postgres); A 20x slower (200 ms) and flooded; A dead (its port closed), still flooded. B's tx/s, p50 and p99 per phase and their ratio to idle; then A
 *              comes back and the backlog drains.
 *   dead       msg to A alone at a steady --dead-rate per second: 5 s with A alive, 20 s dead
 *              (every connection reset on arrival, and counted), then A back and the workload
 *              stopped. Per second: the calls A received, the connections the coordinator tried
 *              while A was dead, A's breaker, queue and limit; then the time to drain the backlog.
 *   admission  N/10 msg of two branches at concurrency 64 against participants at 100 ms with
 *              PARTICIPANT_MAX_IN_FLIGHT=16 (so the coordinator's calls, not its begins, are the
 *              bottleneck), once with ADMISSION_QUEUE_LIMIT=200 and once with admission off:
 *              refusals, Retry-After, latency of the accepted begins, completed transactions,
 *              and how long the backlog took to finish after the last begin.
 *
 * Options:
 *   --transactions N        transactions per flood (default 20000; admission uses N/10)
 *   --concurrency C         the flood's client concurrency (default 64)
 *   --latency MS            the participants' answer time in flood (default 50)
 *   --phase-seconds S       each isolation phase (default 10)
 *   --dead-rate R           msg per second in dead (default 100)
 *   --scenarios a,b         which of flood, isolation, dead, admission (default all)
 *   --participants plain|sdk  plain (default): bare HTTP participants with the knobs; sdk: the
 *                           demo account services (bank-a, bank-b), each behind a plain participant
 *                           as a proxy that holds the knobs (the account service has no latency hook)
 *   --help                  print this text
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import { coordinator, printTable, sleep, type CoordinatorHandle } from './lib/stack.js';
import type { ParticipantControl } from './lib/bench/control.js';
import { closeAgent, configureAgent, type HttpAnswer } from './lib/bench/http-client.js';
import { LoadStats, Sampler, beginHonouringBackPressure, callsNotMade, metricSum, readMetrics, rssMb, type MetricSample } from './lib/bench/overload.js';
import { startParticipants, type BenchParticipants, type BenchSide } from './lib/bench/participants.js';
import { cpuTicks, drain, statusCounts, ticksToMs, type StatusCounts } from './lib/bench/probes.js';
import { runBatch } from './lib/bench/runner.js';

const SCENARIOS = ['flood', 'isolation', 'dead', 'admission'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Options {
  transactions: number;
  concurrency: number;
  latencyMs: number;
  phaseSeconds: number;
  deadRate: number;
  scenarios: Scenario[];
  participants: 'plain' | 'sdk';
}

const COORDINATOR_ENV = {
  LOG_LEVEL: 'warn',
  RETENTION_INTERVAL_MS: '86400000',
  // One client address sending thousands of requests a second.
  RATE_LIMIT_PER_MINUTE: '0',
};

function printHelp(): void {
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  console.log((/\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '').replace(/^ \* ?/gm, '').trim());
}

function parseOptions(argv: string[]): Options {
  const known = new Set(['transactions', 'concurrency', 'latency', 'phase-seconds', 'dead-rate', 'scenarios', 'participants', 'help']);
  for (const arg of argv) if (arg.startsWith('--') && !known.has(arg.slice(2))) throw new Error(`unknown option ${arg}`);
  const value = (name: string): string | null => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return null;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) throw new Error(`--${name} needs a value`);
    return next;
  };
  const positive = (name: string, fallback: number): number => {
    const text = value(name);
    if (text === null) return fallback;
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${text}`);
    return n;
  };
  const scenarios = (value('scenarios') ?? SCENARIOS.join(',')).split(',').map((s) => s.trim());
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`--scenarios: unknown ${s} (known: ${SCENARIOS.join(', ')})`);
  const participants = value('participants') ?? 'plain';
  if (participants !== 'plain' && participants !== 'sdk') throw new Error(`--participants: plain or sdk, got ${participants}`);
  return {
    transactions: Math.round(positive('transactions', 20_000)),
    concurrency: Math.round(positive('concurrency', 64)),
    latencyMs: positive('latency', 50),
    phaseSeconds: positive('phase-seconds', 10),
    deadRate: positive('dead-rate', 100),
    scenarios: scenarios as Scenario[],
    participants,
  };
}

// ---------------------------------------------------------------------------------------------

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** What every scenario works with. */
interface Bench {
  coord: CoordinatorHandle;
  parts: BenchParticipants;
  a: BenchSide & { control: ParticipantControl };
  b: BenchSide & { control: ParticipantControl };
  options: Options;
  pid(): number;
  /** Restarts the coordinator with `env` on top of the bench's (counters in /metrics start again from zero). */
  restart(env: Record<string, string>): Promise<void>;
}

let gidCounter = 0;
const gidFor = (tag: string, i: number) => `${tag}-${Date.now().toString(36)}-${(gidCounter++).toString(36)}-${i}`;

const msgBody = (bench: Bench, sides: BenchSide[], gid: string, i: number) => ({
  mode: 'msg',
  gid,
  submit: true,
  wait: false,
  check: bench.parts.msgCheck,
  branches: sides.map((side, k) => ({ branchId: `m${k}`, participant: side.participant, action: side.msgAction, payload: side.payload(i) })),
});

const sagaBody = (sides: BenchSide[], gid: string, i: number) => ({
  mode: 'saga',
  gid,
  wait: false,
  steps: sides.map((side, k) => ({ name: `s${k}`, participant: side.participant, action: side.action, payload: side.payload(i) })),
});

const tccBody = (side: BenchSide, gid: string, i: number) => ({
  mode: 'tcc',
  gid,
  wait: true,
  branches: [{ branchId: 'b', participant: side.participant, action: side.action, payload: side.payload(i) }],
});

const committed = (answer: HttpAnswer) => (answer.body as { status?: unknown } | null)?.status === 'committed';

/** `total` begins, `concurrency` at a time (or until `stop`), each honouring back-pressure. */
async function load(
  url: string,
  total: number,
  concurrency: number,
  body: (gid: string, i: number) => unknown,
  tag: string,
  stop?: () => boolean,
  good?: (answer: HttpAnswer) => boolean,
): Promise<{ stats: LoadStats; seconds: number; ended: number }> {
  const stats = new LoadStats();
  const batch = await runBatch(
    total,
    concurrency,
    async (i) => ((await beginHonouringBackPressure(url, body(gidFor(tag, i), i), stats, good)) === null ? (stats.firstError ?? 'failed') : null),
    stop,
  );
  return { stats, seconds: batch.seconds, ended: batch.succeeded + batch.failed };
}

async function metricsOrEmpty(url: string): Promise<MetricSample[]> {
  return readMetrics(url).catch(() => []);
}

function notMadeLine(samples: MetricSample[], sides: BenchSide[]): string {
  const byParticipant = callsNotMade(samples);
  return sides
    .map((side) => {
      const row = byParticipant.get(side.participant.toLowerCase()) ?? {};
      return `${side.participant}: queue_timeout ${row.queue_timeout ?? 0}, queue_full ${row.queue_full ?? 0}, breaker_open ${row.breaker_open ?? 0}`;
    })
    .join('; ');
}

const nonTerminalDelta = (before: StatusCounts, after: StatusCounts) => Math.max(0, after.nonTerminal - before.nonTerminal);
const statusDelta = (before: StatusCounts, after: StatusCounts, status: string) => (after.byStatus[status] ?? 0) - (before.byStatus[status] ?? 0);

// ---------------------------------------------------------------------------------------------
// 1. flood

async function flood(bench: Bench): Promise<void> {
  const { options, a, b } = bench;
  console.log(
    `\n== flood: ${options.transactions} transactions per run at client concurrency ${options.concurrency}, ` +
      `${a.participant} and ${b.participant} answering after ${options.latencyMs} ms; coordinator defaults ` +
      `(PARTICIPANT_MAX_IN_FLIGHT 128, initial 16, adaptive; queue 2000; CALL_TIMEOUT_MS 5000; ADMISSION_QUEUE_LIMIT 1000)`,
  );
  const rows: string[][] = [];
  const socketRows: string[][] = [];
  for (const kind of ['msg-submit', 'saga'] as const) {
    await bench.restart({});
    await Promise.all([a.control.latency(options.latencyMs), b.control.latency(options.latencyMs)]);
    await Promise.all([a.control.reset(), b.control.reset()]);
    const url = bench.coord.url;
    const before = await statusCounts(url);
    const rssAtStart = rssMb(bench.pid());
    const sampler = new Sampler(url, bench.pid(), [a.control.port, b.control.port]);
    const started = performance.now();
    const body = kind === 'msg-submit' ? (gid: string, i: number) => msgBody(bench, [a, b], gid, i) : (gid: string, i: number) => sagaBody([a, b], gid, i);
    const run = await load(url, options.transactions, options.concurrency, body, `flood-${kind}`);
    const answeredAt = performance.now();
    const after = await drain(url, before.nonTerminal, 60_000, 600_000, 250);
    const drainedAt = performance.now();
    await sampler.stop();
    const metrics = await metricsOrEmpty(url);
    const [statsA, statsB] = await Promise.all([a.control.stats(), b.control.stats()]);
    const { stats } = run;
    rows.push([
      kind,
      String(stats.accepted),
      String(stats.refusals),
      String(stats.failed),
      `${fmt(stats.p('accepted', 50), 1)} / ${fmt(stats.p('accepted', 99), 1)}`,
      `${fmt(stats.p('whole', 99), 1)}`,
      seconds(answeredAt - started),
      seconds(drainedAt - started),
      fmt(stats.accepted / ((drainedAt - started) / 1000)),
      String(nonTerminalDelta(before, after)),
      String(statusDelta(before, after, 'committed')),
      String(statusDelta(before, after, 'rolled_back')),
      `${fmt(rssAtStart)} / ${fmt(sampler.peakRssMb())}`,
    ]);
    for (const [side, pstats] of [
      [a, statsA],
      [b, statsB],
    ] as const) {
      const row = callsNotMade(metrics).get(side.participant.toLowerCase()) ?? {};
      socketRows.push([
        kind,
        side.participant,
        String(pstats.calls),
        String(pstats.maxInFlight),
        String(sampler.peakSockets(side.control.port)),
        String(sampler.peakGate(side.participant, 'inFlight')),
        String(sampler.peakGate(side.participant, 'limit')),
        String(sampler.peakGate(side.participant, 'queued')),
        String(row.queue_timeout ?? 0),
        String(row.queue_full ?? 0),
        String(row.breaker_open ?? 0),
      ]);
    }
    if (stats.firstError) console.log(`  ${kind}: first client error: ${stats.firstError}`);
    console.log(`  ${kind}: admission by /metrics: admitted ${metricSum(metrics, 'dtx_admission_total', { outcome: 'admitted' })}, refused ${metricSum(metrics, 'dtx_admission_total', { outcome: 'refused' })}; begins sent again after no answer: ${stats.networkRetries}`);
  }
  printTable(
    ['run', 'accepted', '503 refusals', 'given up', 'begin p50/p99 ms', 'begin+waits p99 ms', 'last answer', 'all terminal', 'tx/s to terminal', 'NOT terminal', 'committed', 'rolled back', 'RSS MB start/peak'],
    rows,
    1,
  );
  printTable(
    ['run', 'participant', 'calls received', 'max concurrent seen', 'peak sockets', 'peak in flight (gate)', 'peak limit', 'peak queued', 'queue_timeout', 'queue_full', 'breaker_open'],
    socketRows,
    2,
  );
}

// ---------------------------------------------------------------------------------------------
// 2. isolation

async function isolation(bench: Bench): Promise<void> {
  const { options, a, b } = bench;
  const base = 10;
  const concurrencyB = 16;
  console.log(
    `\n== isolation: one-shot tcc of one branch on ${b.participant} (wait: true) at concurrency ${concurrencyB}, ${options.phaseSeconds} s per phase; ` +
      `${a.participant} and ${b.participant} at ${base} ms; flood on ${a.participant}: msg of one branch on it at concurrency 64 (retrying on Retry-After)`,
  );
  await bench.restart({});
  await Promise.all([a.control.latency(base), b.control.latency(base), a.control.up()]);
  await Promise.all([a.control.reset(), b.control.reset()]);
  const url = bench.coord.url;
  const before = await statusCounts(url);
  const sampler = new Sampler(url, bench.pid(), [a.control.port, b.control.port]);
  // Warm up B's path (JIT, sockets, B's limit).
  await load(url, 500, concurrencyB, (gid, i) => tccBody(b, gid, i), 'iso-warm', undefined, committed);

  const phases: { name: string; b: Awaited<ReturnType<typeof load>>; flood: LoadStats | null; aCalls: number; bCalls: number; samples: [number, number]; cpuPercent: number }[] = [];
  let floodStop = false;
  let floodRun: Promise<Awaited<ReturnType<typeof load>>> | null = null;
  const phase = async (key: string, name: string, flooded: boolean) => {
    const [sa, sb] = await Promise.all([a.control.stats(), b.control.stats()]);
    const from = sampler.samples.length;
    const cpu0 = cpuTicks(bench.pid());
    const t0 = performance.now();
    let floodStats: LoadStats | null = null;
    if (flooded) {
      floodStop = false;
      floodRun = load(url, Number.MAX_SAFE_INTEGER, 64, (gid, i) => msgBody(bench, [a], gid, i), `iso-flood-${key}`, () => floodStop);
    }
    const until = performance.now() + options.phaseSeconds * 1000;
    const run = await load(url, Number.MAX_SAFE_INTEGER, concurrencyB, (gid, i) => tccBody(b, gid, i), `iso-b-${key}`, () => performance.now() >= until, committed);
    if (floodRun) {
      floodStop = true;
      floodStats = (await floodRun).stats;
      floodRun = null;
    }
    const [ea, eb] = await Promise.all([a.control.stats(), b.control.stats()]);
    const cpuPercent = (100 * ticksToMs(cpuTicks(bench.pid()) - cpu0)) / (performance.now() - t0);
    phases.push({ name, b: run, flood: floodStats, aCalls: ea.calls + ea.resets - sa.calls - sa.resets, bCalls: eb.calls - sb.calls, samples: [from, sampler.samples.length], cpuPercent });
  };

  await phase('idle', 'idle', false);
  // The flood alone, A healthy: what the flood's load costs B, apart from A's slowness.
  await phase('flood', `${a.participant} healthy + flooded`, true);
  await a.control.latency(base * 20);
  await phase('slow', `${a.participant} 20x slower (${base * 20} ms) + flooded`, true);
  await a.control.down('closed');
  await phase('dead', `${a.participant} dead (port closed) + flooded`, true);
  await a.control.up();
  await a.control.latency(base);
  const revivedAt = performance.now();
  const after = await drain(url, before.nonTerminal, 60_000, 300_000, 250);
  const drainSeconds = (performance.now() - revivedAt) / 1000;
  await sampler.stop();
  const metrics = await metricsOrEmpty(url);

  const idle = phases[0].b;
  const idleTps = idle.stats.accepted / idle.seconds;
  const idleP99 = idle.stats.p('accepted', 99);
  const peak = (range: [number, number], f: (s: Sampler['samples'][number]) => number) => Math.max(0, ...sampler.samples.slice(range[0], range[1]).map(f));
  printTable(
    ['phase', `${b.participant} tx/s`, 'p50 ms', 'p99 ms', 'p99 / idle', 'tx/s / idle', 'B failed', 'coord CPU %', `flood on ${a.participant}: accepted`, '503 refusals', `calls to ${a.participant}`, `peak queued ${a.participant}`, `peak queued ${b.participant}`],
    phases.map((p) => {
      const tps = p.b.stats.accepted / p.b.seconds;
      const p99 = p.b.stats.p('accepted', 99);
      return [
        p.name,
        fmt(tps),
        fmt(p.b.stats.p('accepted', 50), 1),
        fmt(p99, 1),
        fmt(p99 / idleP99, 2),
        fmt(tps / idleTps, 2),
        String(p.b.stats.failed),
        fmt(p.cpuPercent),
        p.flood ? String(p.flood.accepted) : '-',
        p.flood ? String(p.flood.refusals) : '-',
        String(p.aCalls),
        fmt(peak(p.samples, (s) => s.gates.get(a.participant.toLowerCase())?.queued ?? 0)),
        fmt(peak(p.samples, (s) => s.gates.get(b.participant.toLowerCase())?.queued ?? 0)),
      ];
    }),
    1,
  );
  for (const p of phases) if (p.b.stats.firstError) console.log(`  ${p.name}: first error on ${b.participant}'s workload: ${p.b.stats.firstError}`);
  console.log(
    `  ${a.participant} back at ${base} ms: every transaction terminal ${fmt(drainSeconds, 1)} s later; NOT terminal: ${nonTerminalDelta(before, after)}; ` +
      `rolled back: ${statusDelta(before, after, 'rolled_back')}; calls not made: ${notMadeLine(metrics, [a, b])}; peak coordinator RSS ${fmt(sampler.peakRssMb())} MB`,
  );
}

// ---------------------------------------------------------------------------------------------
// 3. dead participant

async function deadParticipant(bench: Bench): Promise<void> {
  const { options, a } = bench;
  const aliveSeconds = 5;
  const deadSeconds = 20;
  const rate = options.deadRate;
  console.log(
    `\n== dead: msg of one branch on ${a.participant} (at 10 ms) at a steady ${rate}/s; ${aliveSeconds} s alive, ${deadSeconds} s dead ` +
      `(every connection reset on arrival, counted), then back and the workload stopped. Coordinator defaults ` +
      `(BREAKER_FAILURE_THRESHOLD 5, BREAKER_OPEN_MS 1000 doubling to 10000, RECOVERY_INTERVAL_MS 1000, RETRY_BASE_MS 200, RETRY_MAX_MS 30000)`,
  );
  await bench.restart({});
  await Promise.all([a.control.latency(10), a.control.up()]);
  await a.control.reset();
  const url = bench.coord.url;
  const before = await statusCounts(url);
  const sampler = new Sampler(url, bench.pid(), [a.control.port], 250, true);
  const stats = new LoadStats();
  const t0 = Date.now();
  // Open loop: one begin every 1/rate s whatever the answers (at most 512 outstanding).
  const outstanding = new Set<Promise<unknown>>();
  let i = 0;
  let stopped = false;
  const paced = (async () => {
    const step = 1000 / rate;
    for (let next = performance.now(); !stopped; next += step) {
      await sleep(Math.max(0, next - performance.now()));
      if (outstanding.size >= 512) continue;
      const n = i++;
      const p = beginHonouringBackPressure(url, msgBody(bench, [a], gidFor('dead', n), n), stats).finally(() => outstanding.delete(p));
      outstanding.add(p);
    }
  })();
  const mark = (label: string) => ({ label, at: Date.now() });
  const marks = [mark('alive')];
  await sleep(aliveSeconds * 1000);
  await a.control.down('reset');
  marks.push(mark('dead'));
  await sleep(deadSeconds * 1000);
  stopped = true;
  await paced;
  await a.control.up();
  marks.push(mark('back'));
  const backAt = Date.now();
  await Promise.all(outstanding);
  const after = await drain(url, before.nonTerminal, 60_000, 300_000, 250);
  const drainedAt = Date.now();
  await sleep(1500);
  await sampler.stop();
  const metrics = await metricsOrEmpty(url);
  const aStats = await a.control.stats();

  // Per second since t0.
  const perSecond = new Map(aStats.perSecond.map(([second, calls, resets, r503]) => [second, { calls, resets, r503 }]));
  const rows: string[][] = [];
  const firstSecond = Math.floor(t0 / 1000);
  const lastSecond = Math.floor(Math.max(drainedAt, backAt) / 1000) + 1;
  const key = a.participant.toLowerCase();
  for (let s = firstSecond; s <= lastSecond; s++) {
    const inSecond = sampler.samples.filter((x) => Math.floor(x.at / 1000) === s);
    const last = inSecond.at(-1);
    const nonTerminal = inSecond.map((x) => x.nonTerminal).filter((n): n is number => n !== null).at(-1);
    const phase = [...marks].reverse().find((m) => Math.floor(m.at / 1000) <= s)?.label ?? '';
    const row = perSecond.get(s) ?? { calls: 0, resets: 0, r503: 0 };
    const breaker = inSecond.map((x) => x.gates.get(key)?.breaker ?? 0);
    rows.push([
      String(s - firstSecond),
      phase,
      String(row.calls),
      String(row.resets),
      breaker.length === 0 ? '?' : breaker.includes(1) && breaker.includes(0) ? 'open/closed' : breaker.includes(1) ? 'open' : breaker.includes(0.5) ? 'half-open' : 'closed',
      last ? fmt(last.gates.get(key)?.queued ?? 0) : '?',
      last ? fmt(last.gates.get(key)?.inFlight ?? 0) : '?',
      last ? fmt(last.gates.get(key)?.limit ?? 0) : '?',
      nonTerminal === undefined ? '' : String(Math.max(0, nonTerminal - before.nonTerminal)),
    ]);
  }
  printTable(['t s', 'phase', `calls ${a.participant} received`, 'connections tried while dead (reset)', 'breaker', 'queued', 'in flight', 'limit', 'not terminal'], rows, 2);
  // While dead every attempt is a connection reset on arrival (a call received in a "dead" row came before the switch, in that second).
  const deadRows = rows.filter((r) => r[1] === 'dead');
  const deadAttempts = deadRows.reduce((sum, r) => sum + Number(r[3]), 0);
  const backRows = rows.filter((r) => r[1] === 'back');
  const firstCall = backRows.findIndex((r) => Number(r[2]) > 0);
  const busiest = Math.max(0, ...backRows.map((r) => Number(r[2])));
  console.log(
    `  begins: accepted ${stats.accepted}, 503 refusals ${stats.refusals}, given up ${stats.failed}${stats.firstError ? ` (first: ${stats.firstError})` : ''}; ` +
      `while dead the coordinator tried ${deadAttempts} connections in ${deadRows.length} s (${fmt(deadAttempts / Math.max(1, deadRows.length), 1)}/s)`,
  );
  console.log(
    `  after ${a.participant} came back: first call in its ${firstCall < 0 ? '-' : firstCall + 1}th second back, busiest second ${busiest} calls; ` +
      `every transaction terminal in ${seconds(drainedAt - backAt)}; NOT terminal: ${nonTerminalDelta(before, after)}; ` +
      `committed ${statusDelta(before, after, 'committed')}, rolled back ${statusDelta(before, after, 'rolled_back')}; ` +
      `calls not made: ${notMadeLine(metrics, [a])}; max concurrent calls ${a.participant} saw: ${aStats.maxInFlight}; peak coordinator RSS ${fmt(sampler.peakRssMb())} MB`,
  );
}

// ---------------------------------------------------------------------------------------------
// 4. admission

async function admission(bench: Bench): Promise<void> {
  const { options, a, b } = bench;
  const total = Math.max(100, Math.round(options.transactions / 10));
  const latency = 100;
  const maxInFlight = 16;
  console.log(
    `\n== admission: ${total} msg of two branches (${a.participant}, ${b.participant} at ${latency} ms) at client concurrency 64, ` +
      `PARTICIPANT_MAX_IN_FLIGHT ${maxInFlight} (about ${Math.round((maxInFlight * 1000) / latency)} calls/s per participant); clients retry on Retry-After (60 s budget)`,
  );
  const rows: string[][] = [];
  for (const [label, env] of [
    ['ADMISSION_QUEUE_LIMIT 200', { ADMISSION_QUEUE_LIMIT: '200' }],
    ['admission off', { ADMISSION_QUEUE_LIMIT: '0', ADMISSION_BACKLOG_LIMIT: '0' }],
  ] as const) {
    await bench.restart({ PARTICIPANT_MAX_IN_FLIGHT: String(maxInFlight), ...env });
    await Promise.all([a.control.latency(latency), b.control.latency(latency), a.control.up()]);
    await Promise.all([a.control.reset(), b.control.reset()]);
    const url = bench.coord.url;
    const before = await statusCounts(url);
    const sampler = new Sampler(url, bench.pid(), [a.control.port, b.control.port]);
    const started = performance.now();
    const run = await load(url, total, 64, (gid, i) => msgBody(bench, [a, b], gid, i), `admission-${env.ADMISSION_QUEUE_LIMIT}`);
    const after = await drain(url, before.nonTerminal, 60_000, 300_000, 250);
    const drainedAt = performance.now();
    await sampler.stop();
    const metrics = await metricsOrEmpty(url);
    const { stats } = run;
    const notMade = callsNotMade(metrics);
    const sum = (reason: string) => [a, b].reduce((n, side) => n + (notMade.get(side.participant.toLowerCase())?.[reason] ?? 0), 0);
    rows.push([
      label,
      String(stats.accepted),
      String(stats.refusals),
      String(metricSum(metrics, 'dtx_admission_total', { outcome: 'refused' })),
      stats.refusals > 0 ? `${fmt(stats.retryAfterMin)}-${fmt(stats.retryAfterMax)}` : '-',
      `${fmt(stats.p('accepted', 50), 1)} / ${fmt(stats.p('accepted', 99), 1)}`,
      `${fmt(stats.p('whole', 50), 0)} / ${fmt(stats.p('whole', 99), 0)}`,
      String(stats.failed),
      String(statusDelta(before, after, 'committed')),
      String(nonTerminalDelta(before, after)),
      seconds(drainedAt - stats.lastAcceptedAt),
      seconds(drainedAt - started),
      fmt(Math.max(sampler.peakGate(a.participant, 'queued'), sampler.peakGate(b.participant, 'queued'))),
      `${sum('queue_full')} / ${sum('queue_timeout')}`,
      fmt(sampler.peakRssMb()),
    ]);
    if (stats.firstError) console.log(`  ${label}: first client error: ${stats.firstError}`);
  }
  printTable(
    ['run', 'accepted', '503 refusals', 'refused (/metrics)', 'Retry-After s', 'accepted begin p50/p99 ms', 'begin+waits p50/p99 ms', 'given up', 'committed', 'NOT terminal', 'last begin -> all terminal', 'whole run', 'peak queued', 'not made full/timeout', 'peak RSS MB'],
    rows,
    1,
  );
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.argv.includes('--help')) return printHelp();
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`bench:overload: ${error instanceof Error ? error.message : String(error)} (see --help)`);
    process.exit(2);
  }
  configureAgent(512);
  let database: TestDatabase | null = null;
  let coord: CoordinatorHandle | null = null;
  let parts: BenchParticipants | null = null;
  const cleanup = async () => {
    await Promise.allSettled([parts?.stop(), coord?.process.kill()]);
    await database?.drop().catch(() => undefined);
    closeAgent();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  const benchStarted = Date.now();
  try {
    database = await createTestDatabase('overload_coord');
    coord = await coordinator('overload-coordinator', database.url, COORDINATOR_ENV);
    await coord.start();
    parts = await startParticipants(options.participants, coord.url, true, 64, true);
    const { a, b } = parts;
    if (!a.control || !b.control) throw new Error('participants started without their knobs');
    const handle = coord;
    const bench: Bench = {
      coord: handle,
      parts,
      a: a as Bench['a'],
      b: b as Bench['b'],
      options,
      pid: () => handle.process.child?.pid ?? 0,
      async restart(env) {
        await handle.process.kill();
        // A fresh pool: the old one's kept-alive sockets went with the old process.
        configureAgent(512);
        await handle.start(env);
      },
    };
    console.log(
      `nest-dtx overload bench: ${availableParallelism()} cores, node ${process.version}; one coordinator (dist/apps/coordinator) on Postgres, ` +
        `restarted per scenario; participants ${options.participants === 'plain' ? `plain (${a.participant}, ${b.participant}: bare HTTP servers with a latency knob)` : `sdk (${a.participant}, ${b.participant}: the demo account services behind a plain participant as latency/fault proxy)`}; ` +
        `clients honour Retry-After as the SDK does. Figures, not assertions.`,
    );
    const run: Record<Scenario, (bench: Bench) => Promise<void>> = { flood, isolation, dead: deadParticipant, admission };
    for (const scenario of options.scenarios) {
      const t0 = Date.now();
      await run[scenario](bench);
      console.log(`  [${scenario}: ${seconds(Date.now() - t0)}]`);
    }
    console.log(`\noverload bench done in ${seconds(Date.now() - benchStarted)}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
