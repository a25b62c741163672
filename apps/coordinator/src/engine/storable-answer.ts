import type { BranchLocks, CallOutcome, Json, JsonObject } from '@nest-dtx/protocol';
import { findJsonProblem, scrubJson, scrubText, type JsonProblem } from '../common/storable-json.js';

/**
 * Deepest nesting of a participant's answer the coordinator keeps. Deeper answers would
 * overflow the recursive code that serialises them (and Postgres refuses very deep jsonb);
 * no answer a participant means to be read by a person or a program nests this deep.
 */
export const MAX_ANSWER_DEPTH = 256;

/** Markers this process created: recognised by identity, so no participant's own body is ever taken for one. */
const markers = new WeakSet<object>();

/**
 * What is recorded instead of an answer the store cannot keep: a small JSON error that says so.
 * The outcome itself stands (a 2xx is still a success: the participant did the work, and
 * running it again is what must not happen).
 */
export function unstorableAnswer(why: string): JsonObject {
  const marker: JsonObject = {
    error: 'UNSTORABLE_ANSWER',
    message: `the participant's answer ${why}; it was not kept`,
  };
  markers.add(marker);
  return marker;
}

/** Whether a recorded value is a marker of an answer that could not be kept (the writer flags its transaction for attention). */
export function isUnstorableAnswer(value: unknown): boolean {
  return typeof value === 'object' && value !== null && markers.has(value);
}

const why = (problem: JsonProblem): string =>
  problem.kind === 'too_deep'
    ? `is nested deeper than ${MAX_ANSWER_DEPTH} levels`
    : 'contains text Postgres cannot store (NUL or a lone surrogate)';

/** Lock rows only name a table and a key for the admin view: their text is scrubbed, never refused. */
const storableLocks = (locks: BranchLocks): BranchLocks => ({
  count: locks.count,
  rows: locks.rows.map((row) => ({ table: scrubText(row.table), key: scrubText(row.key) })),
});

/**
 * A participant's answer as it can be recorded, whatever the participant sent (PROTOCOL.md 5.1
 * keeps it as the branch's `result` or `lastError`): applied to every outcome as it enters the
 * engine, so no answer can make a write fail and the call be made again and again.
 * - a success whose result cannot be stored keeps its kind, with a marker as its result (the
 *   writer flags the transaction for attention);
 * - a refusal's body (a 409) and a transient error text keep their meaning: the unstorable
 *   characters are replaced by U+FFFD; a refusal nested too deep becomes a marker.
 */
export function storableOutcome(outcome: CallOutcome): CallOutcome {
  switch (outcome.kind) {
    case 'ok': {
      const problem = findJsonProblem(outcome.result, MAX_ANSWER_DEPTH);
      const locks = outcome.locks ? { locks: storableLocks(outcome.locks) } : {};
      if (!problem) return outcome.locks ? { ...outcome, ...locks } : outcome;
      return { kind: 'ok', result: unstorableAnswer(why(problem)), ...locks };
    }
    case 'failed': {
      const problem = findJsonProblem(outcome.error, MAX_ANSWER_DEPTH);
      if (!problem) return outcome;
      const error: Json = problem.kind === 'too_deep' ? unstorableAnswer(why(problem)) : scrubJson(outcome.error);
      return { kind: 'failed', error };
    }
    case 'transient': {
      const error = scrubText(outcome.error);
      return error === outcome.error ? outcome : { kind: 'transient', error };
    }
    case 'ongoing':
      return outcome;
  }
}

/** A recorded answer: a branch change's or a phase-1 write's result and lastError. */
interface RecordedAnswer {
  result?: Json;
  lastError?: Json;
}

type EventLike = { type: string; branchId?: string | null; detail?: Json };

/**
 * The events to add to a write that records answers only as markers: one `attention` event per
 * such branch, so the operator reads which branch and why (its result or lastError says).
 */
export function unkeptAnswerEvents(answers: readonly (RecordedAnswer & { branchId: string })[]): EventLike[] {
  return answers
    .filter((a) => isUnstorableAnswer(a.result) || isUnstorableAnswer(a.lastError))
    .map((a) => ({ type: 'attention', branchId: a.branchId, detail: { unstorableAnswer: true } }));
}

/**
 * SQLSTATE classes of a write Postgres refused for the data it carried: 22 (data exception:
 * text it cannot store, json it cannot parse) and 54 (program limit exceeded: too deep, too
 * complex). The statement rolled back; written again without the answers, it goes through.
 */
export function refusedForItsData(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' && /^(22|54)...$/.test(code);
}

/** Whether a write records anything a participant sent. */
export function carriesAnswers(answers: readonly RecordedAnswer[], events: readonly EventLike[]): boolean {
  return answers.some((a) => (a.result ?? null) !== null || (a.lastError ?? null) !== null) || events.some((e) => errorOfEvent(e) !== undefined);
}

const errorOfEvent = (event: EventLike): Json | undefined =>
  typeof event.detail === 'object' && event.detail !== null && !Array.isArray(event.detail) && 'error' in event.detail ? event.detail.error : undefined;

/**
 * The last resort, when the store refused a write for its data although every answer passed
 * storableOutcome: every answer it carries (results, errors, and the errors in its call events)
 * replaced by a marker saying why. Without it the write would fail on every attempt and the
 * call behind it be made again until the deadline.
 */
export function withAnswersDropped<A extends RecordedAnswer, E extends EventLike>(
  answers: readonly A[],
  events: readonly E[],
  refusal: unknown,
): { answers: A[]; events: E[] } {
  const reason = refusal instanceof Error ? scrubText(refusal.message).slice(0, 200) : 'unknown';
  const marker = () => unstorableAnswer(`was refused by the database (${reason})`);
  return {
    answers: answers.map((a) => ({
      ...a,
      ...((a.result ?? null) !== null ? { result: marker() } : {}),
      ...((a.lastError ?? null) !== null ? { lastError: marker() } : {}),
    })),
    events: events.map((e) => (errorOfEvent(e) === undefined ? e : { ...e, detail: { ...(e.detail as JsonObject), error: marker() } })),
  };
}
