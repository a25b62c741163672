import { AdaptiveLimit, type AdaptiveLimitOptions } from './adaptive-limit.js';
import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.js';

/** How a finished call went, as the limit and the breaker see it: 409 is an answer, not a failure. */
export type CallResult = 'ok' | 'failed' | 'transient';

/** A slot to call the participant, for at most `timeoutMs` (what is left of the call's budget). */
export interface Permit {
  readonly kind: 'permit';
  /** Time spent waiting for the slot, taken from the call's budget. */
  readonly waitedMs: number;
  readonly timeoutMs: number;
  /** Must be called once the call ended, with what it got and how long it took. */
  release(result: CallResult, latencyMs: number): void;
}

/** Why no call was made; each is a transient outcome for the transaction, which tries again later. */
export type GateRefusal =
  | { readonly kind: 'breaker_open'; readonly retryInMs: number }
  | { readonly kind: 'queue_full'; readonly queued: number }
  | { readonly kind: 'queue_timeout'; readonly waitedMs: number };

export interface GateOptions {
  limit: AdaptiveLimitOptions;
  breaker: CircuitBreakerOptions;
  /** Calls that may wait for a slot; one more is refused at once (queue_full). */
  queueLimit: number;
  /** A call granted with less of its budget left than this is not sent (queue_timeout): it could only time out. */
  minCallMs: number;
  /** The clock: monotonic milliseconds (performance.now). */
  now: () => number;
  /** Told when the breaker opens (with how long it stays open) and when it closes again. */
  onBreaker?: (change: { state: 'open'; openForMs: number } | { state: 'closed' }) => void;
}

/** How early a timer may fire, or how late a call's end may be measured, against its timeout. */
const TIMER_SLACK_MS = 50;

interface Waiter {
  readonly enqueuedAt: number;
  readonly deadline: number;
  /** enqueuedAt + maxWaitMs: no slot is given past it, even when its timer has not run yet. */
  readonly sendBy: number;
  readonly resolve: (admission: Permit | GateRefusal) => void;
  timer: NodeJS.Timeout | null;
  done: boolean;
}

/** What an operator and the metrics see of one participant's gate. */
export interface GateSnapshot {
  inFlight: number;
  queued: number;
  limit: number;
  maxInFlight: number;
  breaker: BreakerState;
  /** When an open breaker lets its probe through, in ms from now; null when it is not open. */
  breakerRetryInMs: number | null;
  breakerOpened: number;
  /** Calls not made: refused by the breaker, refused with a full queue, expired while queued. */
  refused: { breakerOpen: number; queueFull: number; queueTimeout: number };
  /** Calls granted a slot, and the time they waited for it in total. */
  granted: number;
  waitedMsTotal: number;
}

/**
 * The door to one participant, per instance: at most `limit` calls in flight (an adaptive
 * limit, adaptive-limit.ts), the rest waiting in order, and a circuit breaker in front.
 * A waiting call keeps its budget: the time it waits is taken from its timeout, and one whose
 * budget runs out in the queue is never sent. Every participant has its own gate, so one that
 * is slow or down fills only its own queue and never delays calls to another.
 */
export class ParticipantGate {
  private readonly limit: AdaptiveLimit;
  private readonly breaker: CircuitBreaker;
  private inFlight = 0;
  private readonly queue: Waiter[] = [];
  private head = 0;
  /** Waiters in `queue` not yet settled (expired ones stay in the array until shifted past). */
  private waiting = 0;
  private readonly refused = { breakerOpen: 0, queueFull: 0, queueTimeout: 0 };
  private granted = 0;
  /** Answer time, a moving average over recent calls (drainSeconds). */
  private latencyMs = 0;
  private waitedMsTotal = 0;

  constructor(private readonly options: GateOptions) {
    this.limit = new AdaptiveLimit(options.limit);
    this.breaker = new CircuitBreaker(options.breaker);
  }

  /**
   * Waits for a slot for a call that may take `budgetMs` in all, waiting included, and waits
   * no longer than `maxWaitMs` (a phase-1 call: until its transaction's deadline).
   */
  enter(budgetMs: number, maxWaitMs = Number.POSITIVE_INFINITY): Promise<Permit | GateRefusal> {
    const now = this.options.now();
    if (this.breaker.state(now) === 'open') return Promise.resolve(this.breakerRefusal(now));
    if (this.queued === 0 && this.inFlight < this.limit.current) {
      const admission = this.grant(now, now, now + budgetMs);
      return Promise.resolve(admission);
    }
    if (this.queued >= this.options.queueLimit) {
      this.refused.queueFull++;
      return Promise.resolve({ kind: 'queue_full', queued: this.queued });
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { enqueuedAt: now, deadline: now + budgetMs, sendBy: now + maxWaitMs, resolve, timer: null, done: false };
      // Leaves the queue when its budget can no longer pay for a call.
      waiter.timer = setTimeout(() => this.expire(waiter), Math.max(0, Math.min(budgetMs - this.options.minCallMs, maxWaitMs)));
      this.queue.push(waiter);
      this.waiting++;
    });
  }

  /** A new ceiling (PARTICIPANT_MAX_IN_FLIGHT, or the operator's for this participant). */
  setMaxInFlight(max: number): void {
    if (max === this.limit.max) return;
    this.limit.setMax(max);
    this.pump();
  }

  /**
   * About how long the calls waiting now need to get through, in whole seconds (1 to 30): the
   * queue over the limit, times the recent answer time. What a refused begin's Retry-After says.
   */
  drainSeconds(): number {
    return Math.min(30, Math.max(1, Math.ceil(this.expectedWaitMs() / 1000)));
  }

  /** About how long a call entering the queue now would wait for its slot, in ms (0 with nobody waiting). */
  expectedWaitMs(): number {
    return (this.waiting / Math.max(1, this.limit.current)) * this.latencyMs;
  }

  /** Whether the breaker is open now (not yet letting its probe through), and for how much longer. */
  breakerOpenForMs(): number | null {
    const now = this.options.now();
    if (this.breaker.state(now) !== 'open') return null;
    return Math.max(0, Math.ceil((this.breaker.reopensAt() ?? now) - now));
  }

  get queued(): number {
    return this.waiting;
  }

  snapshot(): GateSnapshot {
    const now = this.options.now();
    const reopensAt = this.breaker.reopensAt();
    return {
      inFlight: this.inFlight,
      queued: this.queued,
      limit: this.limit.current,
      maxInFlight: this.limit.max,
      breaker: this.breaker.state(now),
      breakerRetryInMs: reopensAt === null ? null : Math.max(0, Math.ceil(reopensAt - now)),
      breakerOpened: this.breaker.opened,
      refused: { ...this.refused },
      granted: this.granted,
      waitedMsTotal: Math.round(this.waitedMsTotal),
    };
  }

  /** Gives a slot to a call that asked at `askedAt`, or says why not (breaker, budget spent). */
  private grant(now: number, askedAt: number, deadline: number): Permit | GateRefusal {
    const left = deadline - now;
    if (left < this.options.minCallMs) {
      this.refused.queueTimeout++;
      return { kind: 'queue_timeout', waitedMs: Math.round(now - askedAt) };
    }
    if (!this.breaker.tryPass(now)) return this.breakerRefusal(now);
    this.inFlight++;
    this.granted++;
    this.waitedMsTotal += now - askedAt;
    const inFlightAtStart = this.inFlight;
    const waited = now - askedAt;
    let released = false;
    return {
      kind: 'permit',
      waitedMs: Math.round(now - askedAt),
      timeoutMs: Math.floor(left),
      release: (result, latencyMs) => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.latencyMs = this.latencyMs === 0 ? latencyMs : this.latencyMs * 0.9 + latencyMs * 0.1;
        this.limit.onSample(latencyMs, inFlightAtStart, result === 'transient');
        const at = this.options.now();
        // A call that ran out of a timeout our own queue had shortened says the participant is
        // slow (the limit above took it as a drop), not that it is down: the breaker ignores it.
        const timedOutOnOurWait = waited > 0 && latencyMs >= left - TIMER_SLACK_MS;
        // (A half-open breaker's probe always counts: its answer is what the breaker waits for.)
        if (result === 'transient') {
          if ((!timedOutOnOurWait || this.breaker.state(at) === 'half_open') && this.breaker.onFailure(at)) this.opened(at);
        } else if (this.breaker.onSuccess()) {
          // Back after an outage: start low again rather than at the old limit (no thundering herd).
          this.limit.restart();
          this.options.onBreaker?.({ state: 'closed' });
        }
        this.pump();
      },
    };
  }

  private breakerRefusal(now: number): GateRefusal {
    this.refused.breakerOpen++;
    const reopensAt = this.breaker.reopensAt();
    return { kind: 'breaker_open', retryInMs: reopensAt === null ? 0 : Math.max(0, Math.ceil(reopensAt - now)) };
  }

  /** The breaker opened: the calls waiting for this participant go back to their transactions at once. */
  private opened(now: number): void {
    this.limit.restart();
    const reopensAt = this.breaker.reopensAt();
    this.options.onBreaker?.({ state: 'open', openForMs: reopensAt === null ? 0 : Math.round(reopensAt - now) });
    for (let waiter = this.shift(); waiter; waiter = this.shift()) this.settle(waiter, this.breakerRefusal(now));
  }

  /** Hands free slots to the calls waiting longest. */
  private pump(): void {
    while (this.waiting > 0 && this.inFlight < this.limit.current) {
      const waiter = this.shift()!;
      const now = this.options.now();
      // Its maxWaitMs (a phase-1 call: its transaction's deadline) passed before its timer ran: not sent.
      if (now >= waiter.sendBy) {
        this.refused.queueTimeout++;
        this.settle(waiter, { kind: 'queue_timeout', waitedMs: Math.round(now - waiter.enqueuedAt) });
        continue;
      }
      this.settle(waiter, this.grant(now, waiter.enqueuedAt, waiter.deadline));
    }
  }

  /** A waiter whose budget ran out: it stays in the array, marked done, and shift() skips it. */
  private expire(waiter: Waiter): void {
    if (waiter.done) return;
    this.waiting--;
    this.refused.queueTimeout++;
    this.settle(waiter, { kind: 'queue_timeout', waitedMs: Math.round(this.options.now() - waiter.enqueuedAt) });
  }

  /** The oldest waiter still waiting (taken out of the count), or undefined. */
  private shift(): Waiter | undefined {
    while (this.head < this.queue.length) {
      const waiter = this.queue[this.head++];
      // Compact now and then, so the array does not grow for ever.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (!waiter.done) {
        this.waiting--;
        return waiter;
      }
    }
    return undefined;
  }

  private settle(waiter: Waiter, admission: Permit | GateRefusal): void {
    if (waiter.done) return;
    waiter.done = true;
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.resolve(admission);
  }
}
