import { MAX_RETRY_AFTER_MS, type Json } from '@nest-dtx/protocol';

/**
 * Brands the marker across copies of the SDK loaded side by side (a bundler, two versions in
 * one tree): `instanceof` would miss a marker made by the other copy and store it as a result.
 */
const ONGOING_ANSWER = Symbol.for('@nest-dtx/sdk:ongoing-answer');

/**
 * What a business method returns for "accepted, the outcome is not known yet" (PROTOCOL.md 3.6):
 * an approval by a person, a batch job, a payment provider's asynchronous answer. The participant
 * answers 202 (message transports: `{ "outcome": "ongoing" }`), what the method wrote commits,
 * and the coordinator sends the same call again later (after `retryAfterMs` when given), until
 * the method gives a final answer: a result, or a BusinessFailure. Made by `ongoing()`.
 */
export interface OngoingAnswer {
  readonly [ONGOING_ANSWER]: true;
  /** When to ask again, in ms (1 to one hour); absent: the coordinator's own backoff. */
  readonly retryAfterMs?: number;
}

/** What `ongoing()` takes. */
export interface OngoingOptions {
  /**
   * When the coordinator should ask again, in milliseconds. Rounded up to a whole number; 0 is
   * no hint; more than an hour is an hour (the coordinator's ceiling, MAX_RETRY_AFTER_MS).
   */
  retryAfterMs?: number;
}

/**
 * The answer of a phase whose outcome is not known yet: `return ongoing({ retryAfterMs: 2000 })`
 * from any phase method of a TccAction, TwoPhaseAction, SagaAction or MsgAction (not from an
 * XaAction or AtAction, whose local transaction cannot stay open between calls). The method is
 * called again with the same call until it answers for good; it decides from its own state
 * (still waiting, approved, refused). BranchOutcomes.report tells the coordinator sooner.
 */
export function ongoing(options: OngoingOptions = {}): OngoingAnswer {
  const { retryAfterMs } = options;
  if (retryAfterMs === undefined) return { [ONGOING_ANSWER]: true };
  if (typeof retryAfterMs !== 'number' || !Number.isFinite(retryAfterMs) || retryAfterMs < 0) {
    throw new TypeError(`ongoing(): retryAfterMs must be a number of milliseconds, 0 or more (got ${String(retryAfterMs)})`);
  }
  const whole = Math.min(Math.ceil(retryAfterMs), MAX_RETRY_AFTER_MS);
  return whole === 0 ? { [ONGOING_ANSWER]: true } : { [ONGOING_ANSWER]: true, retryAfterMs: whole };
}

/** Whether a business method's answer is `ongoing()`'s marker (and not a result to keep). */
export function isOngoingAnswer(value: unknown): value is OngoingAnswer {
  return typeof value === 'object' && value !== null && (value as Partial<OngoingAnswer>)[ONGOING_ANSWER] === true;
}

/**
 * A business method answered `ongoing()` where no phase can stay open between calls: an
 * XaAction's prepare (its local transaction ends prepared, and holds its locks, in the same
 * call) or an AtAction's (its undo log and row locks are taken by the one local transaction).
 * A bug of the participant: nothing it wrote is kept, the call is answered 500 (transient, so
 * the coordinator retries it and, at the deadline, rolls the transaction back) and logged.
 */
export class OngoingNotSupportedError extends Error {
  constructor(readonly actionKind: 'XaAction' | 'AtAction') {
    super(`an ${actionKind} cannot answer ongoing(): its phase 1 must give a final answer within the call (a result, or a BusinessFailure); nothing it wrote was kept`);
    this.name = 'OngoingNotSupportedError';
  }
}

/** The answer of work that must answer for good (XA, AT): its result, or OngoingNotSupportedError for ongoing(). */
export function finalAnswer(answer: Json | void | OngoingAnswer, actionKind: OngoingNotSupportedError['actionKind']): Json {
  if (isOngoingAnswer(answer)) throw new OngoingNotSupportedError(actionKind);
  return answer ?? null;
}
