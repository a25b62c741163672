import type { Json } from '@nest-dtx/protocol';

/**
 * What a barrier row keeps of the answer its phase gave (the SQL row's `result` column, the text
 * after the origin in a Redis field): a final answer, whose result phase 1 replays to its
 * duplicates (phase 2 rows keep null), or the marker of an ongoing answer (PROTOCOL.md 3.6),
 * which makes the same call run the business method again.
 */
export type StoredAnswer = { kind: 'final'; result: Json } | { kind: 'ongoing' };

/**
 * The member that marks the barrier's own values in the stored JSON. A business result that is
 * an object with this member is stored wrapped (`{ "$dtx": "result", "value": … }`), so no result
 * can ever be read back as a marker, whatever the business returns.
 */
const MARKER_MEMBER = '$dtx';

/** The ongoing marker as stored, byte for byte: SQL (MySQL's text column) and Lua compare it as text. */
export const ONGOING_MARKER_TEXT = JSON.stringify({ [MARKER_MEMBER]: 'ongoing' });

const isObject = (value: Json): value is { [key: string]: Json } => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The JSON text a row keeps for `answer`. Throws (a plain error: transient) on what JSON cannot
 * hold (a BigInt, a cycle), before anything is written.
 */
export function storedAnswerText(answer: StoredAnswer): string {
  if (answer.kind === 'ongoing') return ONGOING_MARKER_TEXT;
  const { result } = answer;
  const stored: Json = isObject(result) && Object.hasOwn(result, MARKER_MEMBER) ? { [MARKER_MEMBER]: 'result', value: result } : result;
  return JSON.stringify(stored) ?? 'null';
}

/** A row's stored answer, from its JSON text; null (nothing stored: a phase-2 row, an old row) is a final null. */
export function readStoredAnswer(text: string | null): StoredAnswer {
  if (text === null) return { kind: 'final', result: null };
  const value = JSON.parse(text) as Json;
  if (isObject(value) && typeof value[MARKER_MEMBER] === 'string') {
    if (value[MARKER_MEMBER] === 'ongoing') return { kind: 'ongoing' };
    if (value[MARKER_MEMBER] === 'result') return { kind: 'final', result: value.value ?? null };
  }
  return { kind: 'final', result: value };
}
