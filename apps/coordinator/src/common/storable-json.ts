/**
 * Text Postgres refuses to store. A `jsonb` (or `text`) value cannot hold the NUL character,
 * and a JSON string holding a UTF-16 surrogate without its partner (which JSON.parse happily
 * returns for `"\ud800"`) is not valid Unicode: Postgres refuses both with an error, which used
 * to surface as a 500 on a request and as an endless re-run for a participant's answer. This
 * module finds them (and over-deep nesting, which overflows recursive code) in one walk.
 */

/* eslint-disable no-control-regex -- NUL is exactly the character these look for. */
/** NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Any NUL or surrogate: a cheaper test without look-arounds, so that most strings (with neither) skip the exact one. */
const SUSPECT = /[\u0000\ud800-\udfff]/;
/* eslint-enable no-control-regex */

/** What the first unstorable character of a string is; null when the string can be stored. */
export function unstorableIn(text: string): 'NUL' | 'lone surrogate' | null {
  if (!SUSPECT.test(text)) return null;
  const found = UNSTORABLE.exec(text);
  if (!found) return null;
  return found[0] === '\u0000' ? 'NUL' : 'lone surrogate';
}

/** `text` with every unstorable character replaced by U+FFFD, the Unicode replacement character. */
export function scrubText(text: string): string {
  return UNSTORABLE.test(text) ? text.replace(UNSTORABLE_ALL, '\ufffd') : text;
}

export type PathSegment = string | number;

/** Why a JSON value cannot be stored, and where (the path of the value, or of the object whose key is at fault). */
export type JsonProblem =
  | { kind: 'too_deep'; path: PathSegment[] }
  | { kind: 'text'; path: PathSegment[]; what: 'NUL' | 'lone surrogate'; inKey: boolean };

/**
 * The first problem of a parsed JSON value: nesting deeper than `maxDepth` (objects and arrays
 * count a level each) or an unstorable character in a string or a key. One walk, which never
 * recurses past `maxDepth`, so no value can overflow the stack; the path is built only on the
 * way back from a problem, so a clean value costs one regex test per string and key.
 */
export function findJsonProblem(value: unknown, maxDepth: number): JsonProblem | null {
  if (typeof value === 'string') {
    const what = unstorableIn(value);
    return what ? { kind: 'text', path: [], what, inKey: false } : null;
  }
  if (typeof value !== 'object' || value === null) return null;
  if (maxDepth <= 0) return { kind: 'too_deep', path: [] };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = findJsonProblem(value[i], maxDepth - 1);
      if (problem) {
        problem.path.unshift(i);
        return problem;
      }
    }
    return null;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const what = unstorableIn(key);
    if (what) return { kind: 'text', path: [], what, inKey: true };
    const problem = findJsonProblem((value as Record<string, unknown>)[key], maxDepth - 1);
    if (problem) {
      problem.path.unshift(key);
      return problem;
    }
  }
  return null;
}

/** A path as the API's 400s name fields (`branches.0.payload.note`), after `prefix`; capped so a huge key cannot make a huge answer. */
export function fieldName(prefix: string, path: readonly PathSegment[]): string {
  const name = [prefix, ...path.map(String)].filter((part) => part !== '').join('.');
  return name.length > 200 ? `${name.slice(0, 200)}…` : name;
}

/** The problem in words, for a 400 or a recorded error. */
export function describeProblem(problem: JsonProblem, field: string, maxDepth: number): string {
  if (problem.kind === 'too_deep') return `${field} is nested deeper than ${maxDepth} levels`;
  const character = problem.what === 'NUL' ? 'the NUL character (\\u0000)' : 'an unpaired UTF-16 surrogate';
  return problem.inKey
    ? `${field} has a key containing ${character}, which cannot be stored`
    : `${field} contains ${character}, which cannot be stored`;
}

/**
 * A copy of a JSON value with every unstorable character of its strings and keys replaced by
 * U+FFFD; the value itself when it has none. Only for values already known to nest no deeper
 * than a bound (findJsonProblem), since it recurses.
 */
export function scrubJson<T>(value: T): T {
  if (typeof value === 'string') return scrubText(value) as T;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => scrubJson(item)) as T;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[scrubText(key)] = scrubJson(item);
  return copy as T;
}
