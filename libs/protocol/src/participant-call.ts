import type { Mode, Phase } from './states.js';
import type { Json } from './views.js';

/** Body of every coordinator -> participant call (PROTOCOL.md 5.1; the same data for 5.2). */
export interface PhaseCallBody {
  gid: string;
  branchId: string;
  mode: Mode;
  action: string;
  phase: Phase;
  payload: Json;
}

/** Headers the coordinator sends on HTTP participant calls. */
export const TX_HEADERS = {
  gid: 'x-tx-gid',
  branchId: 'x-tx-branch-id',
  /** Which coordinator instance sent the call, and under which lease (`instance/version`), for operators and fault-injection checks. */
  instance: 'x-tx-coordinator',
} as const;

/** Message pattern of the NestJS microservices transports (PROTOCOL.md 5.2). */
export const BRANCH_MESSAGE_PATTERN = 'tx.branch';

/**
 * On the Redis transport every participant shares one Redis, and a pattern is a pub/sub
 * channel: the `tx.branch` pattern is qualified with the participant's name so that each call
 * reaches only the participant it is for. (TCP participants have their own address and use
 * the plain pattern.)
 */
export function redisBranchPattern(participant: string): { cmd: typeof BRANCH_MESSAGE_PATTERN; participant: string } {
  return { cmd: BRANCH_MESSAGE_PATTERN, participant };
}

/**
 * The rows an AT branch locked in its participant's database (an extension of PROTOCOL.md 5.1
 * and 5.2, which a participant may send with a 2xx to `prepare`, for the admin view): how
 * many, and the first AT_LOCKS_REPORTED of them, `key` being the row's primary key as a JSON
 * array. Over HTTP it is the header `x-tx-at-locks` (this JSON, non-ASCII escaped); on the
 * message transports the reply's `locks` member.
 */
export interface BranchLocks {
  count: number;
  rows: { table: string; key: string }[];
}

/** How many locked rows an AT answer names; `count` is always the whole number. */
export const AT_LOCKS_REPORTED = 20;

/** The HTTP header of BranchLocks. */
export const AT_LOCKS_HEADER = 'x-tx-at-locks';

/** BranchLocks as header text: JSON, its non-ASCII characters escaped (a header carries only ASCII). */
export function encodeBranchLocks(locks: BranchLocks): string {
  return JSON.stringify(locks).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** BranchLocks from a header's or reply's value; null when it is not one (an answer is never refused for it). */
export function readBranchLocks(value: unknown): BranchLocks | null {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { count, rows } = parsed as { count?: unknown; rows?: unknown };
  if (!Number.isSafeInteger(count) || (count as number) < 0 || !Array.isArray(rows)) return null;
  const read: BranchLocks['rows'] = [];
  for (const row of rows.slice(0, AT_LOCKS_REPORTED)) {
    const { table, key } = (row ?? {}) as { table?: unknown; key?: unknown };
    if (typeof table !== 'string' || typeof key !== 'string' || table.length > 200 || key.length > 500) return null;
    read.push({ table, key });
  }
  return { count: count as number, rows: read };
}

/**
 * A participant's reply on the message transports (PROTOCOL.md 5.2): ok (the 2xx equivalent),
 * failed (the 409 equivalent), or ongoing (the 202 equivalent, 3.6): accepted, the outcome not
 * known yet; `retryAfterMs` says when to ask again.
 */
export type MicroserviceReply =
  | { outcome: 'ok'; result: Json; locks?: BranchLocks }
  | { outcome: 'failed'; message: string }
  | { outcome: 'ongoing'; retryAfterMs?: number };

/**
 * The longest `retryAfterMs` of an ongoing answer the coordinator honours (one hour): a longer
 * hint is taken as this. A participant that waits days (a person's approval) is still asked
 * once an hour, which is cheap, and a typo (ms taken for µs) cannot park a branch for a year.
 */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/**
 * The `retryAfterMs` hint of an ongoing answer (PROTOCOL.md 3.6), from whatever the participant
 * sent: a positive safe integer, clamped to MAX_RETRY_AFTER_MS; anything else (absent, zero,
 * negative, fractional, not a number) is no hint, never a reason to refuse the answer.
 */
export function readRetryAfterMs(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) return undefined;
  return Math.min(value, MAX_RETRY_AFTER_MS);
}

/** The ongoing outcome of a 202's JSON body (or a message reply) `{ "retryAfterMs": <int> }`; any other body is no hint. */
export function ongoingOutcome(body: unknown): Extract<CallOutcome, { kind: 'ongoing' }> {
  const hint = typeof body === 'object' && body !== null && !Array.isArray(body) ? readRetryAfterMs((body as { retryAfterMs?: unknown }).retryAfterMs) : undefined;
  return hint === undefined ? { kind: 'ongoing' } : { kind: 'ongoing', retryAfterMs: hint };
}

/** What a participant call came to, once mapped from the transport's answer. */
export type CallOutcome =
  | { kind: 'ok'; result: Json; locks?: BranchLocks }
  | { kind: 'failed'; error: Json }
  | { kind: 'transient'; error: string }
  /**
   * `202` (message transports: `{ "outcome": "ongoing" }`): accepted, outcome not known yet; ask
   * again, at `retryAfterMs` when the participant said (PROTOCOL.md 3.6). Not a failure.
   */
  | { kind: 'ongoing'; retryAfterMs?: number };

/** Connection options of the NestJS Redis transport (host, port, password, db) from a redis:// URL. */
export function redisTransportOptions(url: string): { host: string; port: number; password?: string; db?: number } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.pathname.length > 1 ? { db: Number(parsed.pathname.slice(1)) } : {}),
  };
}
