/**
 * Log levels for a dependency (Postgres, Redis, a broker) that stops answering: an outage is
 * expected in production (a restart, a failover) and must not drown the errors that are bugs.
 * One episode is one outage: its first failure is one warn line, the failures after it are
 * debug lines, and the first success after it is one line with how long it lasted.
 *
 * Pure: the clock and the sink are given, so the spec drives it with a fake clock, and the
 * coordinator (logging/dependency-outages.ts) writes the lines through its JSON logger.
 */

/** The levels an episode writes at: never error, which is left to what is a bug. */
export type OutageLevel = 'warn' | 'log' | 'debug';

export interface OutageLine {
  level: OutageLevel;
  msg: string;
  fields: {
    dependency: string;
    /** Failures seen in the episode so far (on its last line: in all). */
    failures: number;
    /** The failure's cause, on the lines about a failure. */
    cause?: string;
    /** How long the episode lasted, on its last line. */
    downMs?: number;
  };
}

export type OutageSink = (line: OutageLine) => void;

/** Milliseconds from a monotonic clock: a wall-clock step (NTP, a VM resumed) must not bend a duration. */
export type MonotonicClock = () => number;

const monotonicNow: MonotonicClock = () => performance.now();

/** Longest cause quoted on a line: a driver's message may carry a whole query or stack. */
const MAX_CAUSE = 300;

/**
 * A failure's cause in one short line. Node reports a connection refused on every address of
 * a name as an AggregateError without a message; amqp-connection-manager passes `{ err }`.
 */
export function describeCause(cause: unknown, nesting = 0): string {
  let text: string;
  if (typeof cause === 'string') text = cause;
  else if (cause instanceof AggregateError && cause.message === '') {
    const inner = (cause.errors as unknown[]).map((error) => describeCause(error, nesting + 1));
    text = [...new Set(inner)].join('; ') || 'AggregateError';
  } else if (cause instanceof Error) text = cause.message || cause.name;
  else if (typeof cause === 'object' && cause !== null && 'err' in cause && nesting < 2) text = describeCause(cause.err, nesting + 1);
  else text = String(cause);
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > MAX_CAUSE ? `${line.slice(0, MAX_CAUSE - 1)}…` : line || 'unknown cause';
}

/**
 * The outage state of one dependency. Sources are the connections that may each be lost and
 * regained on their own (Redis's publisher and subscriber, one RabbitMQ connection per
 * participant): the episode ends once every source that failed answers again. Callers that
 * cannot tell connections apart use the default source, so any success ends the episode.
 */
export class OutageEpisode {
  /** Monotonic time the episode began at; null: no episode. */
  private startedAt: number | null = null;
  private failures = 0;
  /** Sources that failed and have not answered since. */
  private readonly down = new Set<string>();

  constructor(
    /** The dependency as the lines name it: `postgres`, `redis`, `rabbitmq`, `nats`. */
    readonly dependency: string,
    private readonly sink: OutageSink,
    private readonly now: MonotonicClock = monotonicNow,
  ) {}

  /** Whether the dependency is in an outage (a failure seen, no answer since). */
  get ongoing(): boolean {
    return this.startedAt !== null;
  }

  /** A failure of `source` to reach the dependency: the episode's first is a warn line, the rest debug. */
  failed(cause: unknown, source = ''): void {
    this.down.add(source);
    this.failures += 1;
    const fields = { dependency: this.dependency, failures: this.failures, cause: describeCause(cause) };
    if (this.startedAt === null) {
      this.startedAt = this.now();
      this.sink({ level: 'warn', msg: `${this.dependency} unreachable: ${fields.cause}`, fields });
      return;
    }
    this.sink({ level: 'debug', msg: `${this.dependency} still unreachable (${this.failures} failures): ${fields.cause}`, fields });
  }

  /** `source` reached the dependency: once no source is down, the episode ends with one line. */
  recovered(source = ''): void {
    if (this.startedAt === null) return;
    this.down.delete(source);
    if (this.down.size > 0) return;
    const downMs = Math.max(0, this.now() - this.startedAt);
    const failures = this.failures;
    this.startedAt = null;
    this.failures = 0;
    this.sink({
      level: 'log',
      msg: `${this.dependency} reachable again after ${(downMs / 1000).toFixed(1)} s (${failures} ${failures === 1 ? 'failure' : 'failures'})`,
      fields: { dependency: this.dependency, failures, downMs: Math.round(downMs) },
    });
  }

  /**
   * `source` is gone (a connection closed on purpose): it no longer holds the episode open. The
   * episode itself goes on until something answers, as nothing has shown the dependency is back.
   */
  forget(source: string): void {
    this.down.delete(source);
  }
}
