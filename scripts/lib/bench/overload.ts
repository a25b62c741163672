/**
 * What the overload bench (scripts/overload-bench.ts) needs beyond the bench's own probes: a
 * begin that honours `503 OVERLOADED` / `429 RATE_LIMITED` as the SDK's TransactionClient does,
 * the coordinator's /metrics read into numbers, its resident memory and its sockets to each
 * participant (/proc), and a sampler that records them a few times a second.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { sleep } from '../stack.js';
import { getJson, postJson, type HttpAnswer } from './http-client.js';
import { statusCounts } from './probes.js';
import { percentile } from './runner.js';

// ---------------------------------------------------------------------------------------------
// The client: back-pressure as the SDK handles it.

/** How the begins of one workload went. */
export class LoadStats {
  /** Begins answered 2xx. */
  accepted = 0;
  /** 503 OVERLOADED / 429 RATE_LIMITED answers (each followed by a wait and the same begin again). */
  refusals = 0;
  /** Begins sent again after no answer (a network error), as the SDK does twice. */
  networkRetries = 0;
  /** Begins given up: an answer other than 2xx and back-pressure, back-pressure past the wait budget, a network error. */
  failed = 0;
  firstError: string | null = null;
  /** Latency of each accepted request alone (the request that got 2xx, not the waits before it). */
  readonly acceptedMs: number[] = [];
  /** From the first attempt to the accepted answer, Retry-After waits included. */
  readonly wholeMs: number[] = [];
  retryAfterMin = Number.POSITIVE_INFINITY;
  retryAfterMax = 0;
  /** performance.now() of the last accepted begin. */
  lastAcceptedAt = 0;

  fail(error: string): string {
    this.failed++;
    this.firstError ??= error;
    return error;
  }

  p(values: 'accepted' | 'whole', q: number): number {
    return percentile(values === 'accepted' ? this.acceptedMs : this.wholeMs, q);
  }
}

const errorCode = (answer: HttpAnswer): string | null => {
  const body = answer.body as { error?: unknown } | null;
  return body && typeof body.error === 'string' ? body.error : null;
};

/** Retry-After in ms: delay-seconds or an HTTP date; null when absent. */
function retryAfterMs(answer: HttpAnswer): number | null {
  const header = answer.headers['retry-after'];
  if (typeof header !== 'string') return null;
  if (/^\d+$/.test(header.trim())) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/**
 * POST /v1/transactions as the SDK's TransactionClient sends a begin: a 503 OVERLOADED or 429
 * RATE_LIMITED is sent again after its Retry-After plus up to a quarter more (1 s without one),
 * until `maxBackPressureWaitMs` (the SDK's default 60 s) of waiting is spent; a request that got
 * no answer is sent again twice, after 200 and 400 ms. Counts into
 * `stats`; resolves with the accepted answer, or null (counted as failed) when given up.
 * `good`: whether a 2xx answer is the outcome wanted (a `wait: true` begin that did not commit is a failure).
 */
export async function beginHonouringBackPressure(
  coordinatorUrl: string,
  body: unknown,
  stats: LoadStats,
  good: (answer: HttpAnswer) => boolean = () => true,
  maxBackPressureWaitMs = 60_000,
): Promise<HttpAnswer | null> {
  let budget = maxBackPressureWaitMs;
  let networkRetries = 0;
  const first = performance.now();
  for (;;) {
    const t0 = performance.now();
    let answer: HttpAnswer;
    try {
      answer = await postJson(`${coordinatorUrl}/v1/transactions`, body);
    } catch (error) {
      // As the SDK: no answer is sent again twice, after 200 and 400 ms (the gid makes it safe).
      if (networkRetries < 2) {
        stats.networkRetries++;
        await sleep(200 * 2 ** networkRetries++);
        continue;
      }
      stats.fail(error instanceof Error ? error.message : String(error));
      return null;
    }
    const now = performance.now();
    if (answer.status >= 200 && answer.status < 300) {
      stats.accepted++;
      stats.acceptedMs.push(now - t0);
      stats.wholeMs.push(now - first);
      stats.lastAcceptedAt = now;
      if (!good(answer)) {
        stats.fail(`accepted but ${JSON.stringify((answer.body as { status?: unknown } | null)?.status)}`);
        return null;
      }
      return answer;
    }
    const code = errorCode(answer);
    if ((answer.status === 503 && code === 'OVERLOADED') || (answer.status === 429 && code === 'RATE_LIMITED')) {
      stats.refusals++;
      const after = retryAfterMs(answer);
      if (after !== null) {
        stats.retryAfterMin = Math.min(stats.retryAfterMin, after / 1000);
        stats.retryAfterMax = Math.max(stats.retryAfterMax, after / 1000);
      }
      const delay = Math.round((after ?? 1000) * (1 + Math.random() / 4));
      if (delay > budget) {
        stats.fail(`still ${answer.status} ${code} after ${maxBackPressureWaitMs} ms of waiting`);
        return null;
      }
      budget -= delay;
      await sleep(delay);
      continue;
    }
    stats.fail(`${answer.status} ${code ?? JSON.stringify(answer.body)}`);
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// /metrics

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, samples only (no HELP/TYPE). */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

export async function readMetrics(coordinatorUrl: string): Promise<MetricSample[]> {
  const answer = await getJson(`${coordinatorUrl}/metrics`);
  if (answer.status !== 200 || typeof answer.body !== 'string') throw new Error(`GET /metrics: ${answer.status}`);
  return parseMetrics(answer.body);
}

/** The sum of a metric's samples whose labels include `labels`. */
export function metricSum(samples: MetricSample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** dtx_participant_calls_not_made_total by participant (keyed in lower case) and reason. */
export function callsNotMade(samples: MetricSample[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const s of samples) {
    if (s.name !== 'dtx_participant_calls_not_made_total') continue;
    const key = (s.labels.participant ?? '').toLowerCase();
    const row = out.get(key) ?? {};
    row[s.labels.reason ?? '?'] = (row[s.labels.reason ?? '?'] ?? 0) + s.value;
    out.set(key, row);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc

/** VmRSS of a process in MB (0 when gone). */
export function rssMb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * ESTABLISHED TCP connections of process `pid` to each of `ports` on the loopback: its socket
 * inodes (/proc/<pid>/fd) matched against /proc/net/tcp and tcp6 (remote port, state 01).
 */
export function establishedTo(pid: number, ports: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>(ports.map((port) => [port, 0]));
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (link.startsWith('socket:[')) inodes.add(link.slice(8, -1));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return counts;
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '01') continue;
      const remotePort = parseInt(fields[2].split(':')[1], 16);
      if (counts.has(remotePort) && inodes.has(fields[9])) counts.set(remotePort, counts.get(remotePort)! + 1);
    }
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// The sampler

export interface GateView {
  inFlight: number;
  queued: number;
  limit: number;
  /** 1 open, 0.5 half-open, 0 closed. */
  breaker: number;
}

export interface Sample {
  /** Date.now() */
  at: number;
  rssMb: number;
  /** By participant name, lower case. */
  gates: Map<string, GateView>;
  /** ESTABLISHED sockets from the coordinator, by participant port. */
  sockets: Map<number, number>;
  /** Non-terminal transactions (only when the sampler reads /admin/stats). */
  nonTerminal: number | null;
}

/**
 * Reads, every `everyMs` until stopped, the coordinator's RSS, its gates (from /metrics) and its
 * sockets to `ports`; with `withCounts`, /admin/stats every fourth sample too.
 */
export class Sampler {
  readonly samples: Sample[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly coordinatorUrl: string,
    private readonly pid: number,
    private readonly ports: readonly number[],
    private readonly everyMs = 250,
    private readonly withCounts = false,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    for (let n = 0; this.running; n++) {
      const at = Date.now();
      const gates = new Map<string, GateView>();
      try {
        const metrics = await readMetrics(this.coordinatorUrl);
        for (const s of metrics) {
          const field = { dtx_participant_in_flight: 'inFlight', dtx_participant_queued: 'queued', dtx_participant_limit: 'limit', dtx_participant_breaker_open: 'breaker' }[s.name] as keyof GateView | undefined;
          if (!field || !s.labels.participant) continue;
          const key = s.labels.participant.toLowerCase();
          const view = gates.get(key) ?? { inFlight: 0, queued: 0, limit: 0, breaker: 0 };
          view[field] = s.value;
          gates.set(key, view);
        }
      } catch {
        // a slow or restarting coordinator: this sample has no gates
      }
      let nonTerminal: number | null = null;
      if (this.withCounts && n % 4 === 0) nonTerminal = await statusCounts(this.coordinatorUrl).then((c) => c.nonTerminal, () => null);
      this.samples.push({ at, rssMb: rssMb(this.pid), gates, sockets: establishedTo(this.pid, this.ports), nonTerminal });
      await sleep(Math.max(0, this.everyMs - (Date.now() - at)));
    }
  }

  async stop(): Promise<Sample[]> {
    this.running = false;
    await this.loop;
    return this.samples;
  }

  peakRssMb(): number {
    return Math.max(0, ...this.samples.map((s) => s.rssMb));
  }

  peakGate(participant: string, field: keyof GateView): number {
    return Math.max(0, ...this.samples.map((s) => s.gates.get(participant.toLowerCase())?.[field] ?? 0));
  }

  peakSockets(port: number): number {
    return Math.max(0, ...this.samples.map((s) => s.sockets.get(port) ?? 0));
  }
}
