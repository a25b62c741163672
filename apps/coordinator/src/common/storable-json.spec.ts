import { describe, expect, it } from 'vitest';
import { ApiError } from './api-error.js';
import { findJsonProblem, scrubJson, scrubText, unstorableIn } from './storable-json.js';
import { BodyDepthPipe } from './validation.js';

// Built from code points, so no editor or linter ever sees (or normalises) the characters themselves.
const NUL = String.fromCharCode(0);
const HIGH = String.fromCharCode(0xd800);
const LOW = String.fromCharCode(0xdc00);
const PAIR = String.fromCodePoint(0x1f600); // 😀, a high surrogate followed by its low one

/** What the pipe throws for a value, as the 400 body's fields. */
function refusal(value: unknown, type: 'body' | 'query' | 'param' = 'body', data?: string): { field: unknown; message: string } | null {
  try {
    new BodyDepthPipe().transform(value, { type, data });
    return null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const body = error.getResponse() as { field?: unknown; message: string; statusCode: number; error: string };
    expect(body.statusCode).toBe(400);
    expect(body.error).toBe('VALIDATION_FAILED');
    return { field: body.field, message: body.message };
  }
}

describe('text Postgres cannot store', () => {
  it('is NUL, a lone high surrogate or a lone low surrogate, anywhere in the string', () => {
    expect(unstorableIn(`a${NUL}b`)).toBe('NUL');
    expect(unstorableIn(NUL)).toBe('NUL');
    expect(unstorableIn(`a${HIGH}`)).toBe('lone surrogate');
    expect(unstorableIn(`${HIGH}b`)).toBe('lone surrogate');
    expect(unstorableIn(`${LOW}b`)).toBe('lone surrogate');
    expect(unstorableIn(`a${LOW}`)).toBe('lone surrogate');
    // Two highs then a low: the first high is alone.
    expect(unstorableIn(`${HIGH}${HIGH}${LOW}`)).toBe('lone surrogate');
    // A low then a high: both alone.
    expect(unstorableIn(`${LOW}${HIGH}`)).toBe('lone surrogate');
  });

  it('lets valid pairs and every other character through', () => {
    expect(unstorableIn(PAIR)).toBeNull();
    expect(unstorableIn(`x${PAIR}${PAIR}y`)).toBeNull();
    expect(unstorableIn('é ü 中文 \u0001 \u007f \ufffd \uffff')).toBeNull();
    expect(unstorableIn('')).toBeNull();
  });

  it('is replaced by U+FFFD when scrubbed, pairs kept', () => {
    expect(scrubText(`a${NUL}b${HIGH}c${LOW}${PAIR}`)).toBe(`a\ufffdb\ufffdc\ufffd${PAIR}`);
    const clean = { a: ['x', PAIR] };
    expect(scrubJson(clean)).toEqual(clean);
    expect(scrubJson({ [`k${NUL}`]: [`v${HIGH}`, 1, null, { deep: LOW }] })).toEqual({ 'k\ufffd': ['v\ufffd', 1, null, { deep: '\ufffd' }] });
  });
});

describe('findJsonProblem', () => {
  it('finds the value, deep in objects and arrays, with its path', () => {
    expect(findJsonProblem({ a: { b: [1, 'ok', `x${NUL}`] } }, 64)).toEqual({ kind: 'text', path: ['a', 'b', 2], what: 'NUL', inKey: false });
    expect(findJsonProblem([[[HIGH]]], 64)).toEqual({ kind: 'text', path: [0, 0, 0], what: 'lone surrogate', inKey: false });
  });

  it('finds keys, naming the object that holds them', () => {
    expect(findJsonProblem({ a: { [`k${LOW}`]: 1 } }, 64)).toEqual({ kind: 'text', path: ['a'], what: 'lone surrogate', inKey: true });
    expect(findJsonProblem({ [NUL]: 1 }, 64)).toEqual({ kind: 'text', path: [], what: 'NUL', inKey: true });
  });

  it('passes clean values of every JSON type', () => {
    expect(findJsonProblem({ a: [1, true, null, 'x', PAIR, { [PAIR]: 2.5 }] }, 64)).toBeNull();
    expect(findJsonProblem('x', 0)).toBeNull();
    expect(findJsonProblem(null, 0)).toBeNull();
  });

  it('stops at the depth limit without recursing further', () => {
    let deep: unknown = NUL;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findJsonProblem(deep, 64)).toMatchObject({ kind: 'too_deep' });
  });
});

describe('the body pipe', () => {
  it('refuses unstorable text with 400 naming the field, for metadata, payloads and keys', () => {
    expect(refusal({ mode: 'tcc', metadata: { note: `a${NUL}` } })).toEqual({
      field: 'metadata.note',
      message: 'metadata.note contains the NUL character (\\u0000), which cannot be stored',
    });
    expect(refusal({ mode: 'tcc', branches: [{ participant: 'p', action: 'a' }, { participant: 'p', action: 'a', payload: { x: [HIGH] } }] })).toEqual({
      field: 'branches.1.payload.x.0',
      message: 'branches.1.payload.x.0 contains an unpaired UTF-16 surrogate, which cannot be stored',
    });
    expect(refusal({ mode: 'tcc', metadata: { [`k${LOW}`]: 1 } })?.field).toBe('metadata');
    expect(refusal({ [`k${NUL}`]: 1 })?.field).toBe('body');
    expect(refusal({ mode: 'tcc', gid: `g${NUL}` })?.field).toBe('gid');
  });

  it('refuses it in query and path values too, named by their key', () => {
    expect(refusal({ participant: `p${NUL}` }, 'query')?.field).toBe('participant');
    expect(refusal(`g${HIGH}`, 'param', 'gid')?.field).toBe('gid');
    expect(refusal(`g${HIGH}`, 'query')?.field).toBe('query');
  });

  it('passes clean bodies untouched, surrogate pairs included', () => {
    const body = { mode: 'tcc', metadata: { emoji: PAIR, [PAIR]: [PAIR] } };
    expect(new BodyDepthPipe().transform(body, { type: 'body' })).toBe(body);
  });
});
