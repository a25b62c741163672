import { Injectable, Logger } from '@nestjs/common';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { ParticipantGate, type GateSnapshot } from './participant-gate.js';

/** A begin refused before anything was written: 503 OVERLOADED with Retry-After. */
export interface AdmissionRefusal {
  reason: string;
  retryAfterSeconds: number;
}

/**
 * Every participant's gate in this instance (participant-gate.ts), made on first use, keyed by
 * the registered name in lower case (names are case-insensitive). Also the instance's admission
 * control: a begin is refused, before anything is written, when a participant it names already
 * has ADMISSION_QUEUE_LIMIT calls waiting here (or so many, at its recent answer time, that a new
 * call would wait more than half CALL_TIMEOUT_MS), or this instance has ADMISSION_BACKLOG_LIMIT
 * waiting in all: the work already accepted is finished first, and callers slow down instead of
 * every transaction growing slower.
 */
@Injectable()
export class ParticipantGates {
  private readonly logger = new Logger(ParticipantGates.name);
  private readonly gates = new Map<string, ParticipantGate>();
  /** Each gate's participant as registered (the metrics' label, so it joins the call metrics'). */
  private readonly spellings = new Map<string, string>();
  private readonly admission = { admitted: 0, refused: 0 };

  constructor(private readonly config: CoordinatorConfig) {}

  /** The gate of a participant; `maxInFlight`: its own ceiling (set by an operator), or null for the default. */
  gate(participant: string, maxInFlight: number | null = null): ParticipantGate {
    const key = participant.toLowerCase();
    const env = this.config.env;
    const max = maxInFlight ?? env.PARTICIPANT_MAX_IN_FLIGHT;
    let gate = this.gates.get(key);
    if (!gate) {
      gate = new ParticipantGate({
        limit: {
          max,
          initial: Math.min(env.PARTICIPANT_INITIAL_IN_FLIGHT, max),
          // An answer taking half the call's timeout is a participant queueing our calls.
          slowAfterMs: env.CALL_TIMEOUT_MS / 2,
          adaptive: env.PARTICIPANT_ADAPTIVE_LIMIT,
        },
        breaker: { failureThreshold: env.BREAKER_FAILURE_THRESHOLD, openMs: env.BREAKER_OPEN_MS, maxOpenMs: env.BREAKER_OPEN_MAX_MS },
        queueLimit: env.PARTICIPANT_QUEUE_LIMIT,
        minCallMs: Math.min(250, env.CALL_TIMEOUT_MS / 4),
        now: () => performance.now(),
        // One line per change of state, however many transactions it holds back.
        onBreaker: (change) =>
          change.state === 'open'
            ? this.logger.warn(`participant ${participant}: circuit breaker open after transient failures in a row; no calls for ${change.openForMs} ms, then one probe`)
            : this.logger.log(`participant ${participant}: circuit breaker closed, calls resume`),
      });
      this.gates.set(key, gate);
      this.spellings.set(key, participant);
    } else {
      gate.setMaxInFlight(max);
    }
    return gate;
  }

  /** Why a begin naming these participants may not be accepted now, or null when it may. */
  admissionRefusal(participants: readonly string[]): AdmissionRefusal | null {
    return this.refusalFor(participants);
  }

  /** Counts a begin admitted or refused, for the admitted/refused rates an operator watches (GET /admin/stats). */
  countAdmission(outcome: 'admitted' | 'refused'): void {
    this.admission[outcome]++;
  }

  /** Every gate's state, by participant name as registered. */
  snapshot(): Map<string, GateSnapshot> {
    return new Map([...this.gates].map(([key, gate]) => [this.spellings.get(key) ?? key, gate.snapshot()]));
  }

  /** One participant's gate state, or null when this instance has not made one for it yet. */
  snapshotOf(participant: string): GateSnapshot | null {
    return this.gates.get(participant.toLowerCase())?.snapshot() ?? null;
  }

  /** Begins admitted and refused by this instance since it started. */
  admissionCounts(): { admitted: number; refused: number } {
    return { ...this.admission };
  }

  /**
   * Whether one of these participants already has a full round of calls waiting here (as many
   * queued as its limit lets run at once): recovery leaves such a transaction for later rather
   * than hold one of its slots in that queue while other participants' transactions wait.
   */
  saturated(participants: Iterable<string>): boolean {
    for (const name of participants) {
      const gate = this.gates.get(name.toLowerCase());
      if (gate && gate.queued > 0 && gate.queued >= gate.snapshot().limit) return true;
    }
    return false;
  }

  /** Calls waiting for a slot in this instance, all participants together. */
  backlog(): number {
    let queued = 0;
    for (const gate of this.gates.values()) queued += gate.queued;
    return queued;
  }

  private refusalFor(participants: readonly string[]): AdmissionRefusal | null {
    const { ADMISSION_QUEUE_LIMIT, ADMISSION_BACKLOG_LIMIT } = this.config.env;
    if (ADMISSION_BACKLOG_LIMIT > 0) {
      const backlog = this.backlog();
      if (backlog >= ADMISSION_BACKLOG_LIMIT) {
        return { reason: `this instance has ${backlog} participant calls waiting (ADMISSION_BACKLOG_LIMIT ${ADMISSION_BACKLOG_LIMIT})`, retryAfterSeconds: this.drainSeconds() };
      }
    }
    if (ADMISSION_QUEUE_LIMIT > 0) {
      for (const name of new Set(participants.map((p) => p.toLowerCase()))) {
        const gate = this.gates.get(name);
        if (gate && gate.queued >= ADMISSION_QUEUE_LIMIT) {
          return {
            reason: `participant ${name} has ${gate.queued} calls waiting on this instance (ADMISSION_QUEUE_LIMIT ${ADMISSION_QUEUE_LIMIT})`,
            retryAfterSeconds: gate.drainSeconds(),
          };
        }
        // Down: every call to it is held back until its breaker's probe gets an answer. A begin
        // naming it would only wait in Postgres, and taking them at full rate costs every other
        // participant's transactions the writes (the bench's isolation run: p99 4x idle).
        // Only while open: once its time is up a begin is let in, whose call may be the probe
        // (with nothing else for it to call, a breaker refusing begins would never close).
        const openForMs = gate?.breakerOpenForMs() ?? null;
        if (openForMs !== null) {
          return {
            reason: `participant ${name}'s circuit breaker is open: it failed ${this.config.env.BREAKER_FAILURE_THRESHOLD} times in a row`,
            retryAfterSeconds: Math.min(30, Math.max(1, Math.ceil(openForMs / 1000))),
          };
        }
        // Fewer waiting, but answering so slowly that a new call would spend half its
        // CALL_TIMEOUT_MS in the queue: admitting more would only turn waits into time-outs.
        const waitMs = gate?.expectedWaitMs() ?? 0;
        if (gate && waitMs > this.config.env.CALL_TIMEOUT_MS / 2) {
          return {
            reason: `participant ${name} has ${gate.queued} calls waiting on this instance, about ${Math.round(waitMs)} ms of waiting (more than half of CALL_TIMEOUT_MS)`,
            retryAfterSeconds: gate.drainSeconds(),
          };
        }
      }
    }
    return null;
  }

  /** The longest any gate needs to drain its queue, as a Retry-After. */
  private drainSeconds(): number {
    let seconds = 1;
    for (const gate of this.gates.values()) seconds = Math.max(seconds, gate.drainSeconds());
    return seconds;
  }
}
