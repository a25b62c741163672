import { describe, expect, it } from 'vitest';
import { ApiError } from './api-error.js';
import { BodyDepthPipe, jsonDepth, MAX_BODY_DEPTH } from './validation.js';

const nested = (depth: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { n: value } : [value];
  return value;
};

describe('body depth', () => {
  it('measures objects and arrays, scalars being depth 0', () => {
    expect(jsonDepth(1)).toBe(0);
    expect(jsonDepth(null)).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth({ a: [1, { b: 2 }], c: 'x' })).toBe(3);
    expect(jsonDepth(nested(200_000))).toBe(200_000);
  });

  it('refuses bodies deeper than the limit with 400 naming the body, and passes the rest untouched', () => {
    const pipe = new BodyDepthPipe();
    const ok = nested(MAX_BODY_DEPTH);
    expect(pipe.transform(ok, { type: 'body' })).toBe(ok);
    expect(() => pipe.transform(nested(MAX_BODY_DEPTH + 1), { type: 'body' })).toThrow(ApiError);
    expect(() => pipe.transform(nested(MAX_BODY_DEPTH + 1), { type: 'body' })).toThrow(/nested deeper than 64/);
    // Only bodies: query and path values are flat strings anyway.
    expect(pipe.transform('x', { type: 'param' })).toBe('x');
  });
});
