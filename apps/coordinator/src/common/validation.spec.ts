import type { ArgumentMetadata } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { AddBranchDto, BeginTransactionDto, DecideDto } from '@nest-dtx/protocol';
import { ApiError } from './api-error.js';
import { findJsonProblem } from './storable-json.js';
import { BodyDepthPipe, createFullValidationPipe, createValidationPipe, MAX_BODY_DEPTH } from './validation.js';

/** The depth half of the body check, on values without strings. */
const deeperThan = (value: unknown, limit: number): boolean => findJsonProblem(value, limit)?.kind === 'too_deep';

/** Reference model of the depth check: the nesting depth of a JSON value, without recursion. */
function jsonDepth(value: unknown): number {
  let deepest = 0;
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    const depth = item.depth + 1;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(item.value)) pending.push({ value: child, depth });
  }
  return deepest;
}

const nested = (depth: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { n: value } : [value];
  return value;
};

describe('body depth', () => {
  it('counts objects and arrays as levels, scalars as none, and never recurses past the limit', () => {
    expect(deeperThan(1, 0)).toBe(false);
    expect(deeperThan(null, 0)).toBe(false);
    expect(deeperThan({}, 0)).toBe(true);
    expect(deeperThan({}, 1)).toBe(false);
    // 200,000 levels: a check that recursed all the way down would overflow the stack.
    expect(deeperThan(nested(200_000), MAX_BODY_DEPTH)).toBe(true);
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

describe('the fast path of the validation pipe', () => {
  const fast = createValidationPipe();
  const full = createFullValidationPipe();
  const branch = { participant: 'bank', action: 'debit', payload: { a: 1 } };
  const bodies: [unknown, unknown][] = [
    [BeginTransactionDto, { mode: 'tcc', branches: [branch, { ...branch, branchId: 'b2' }] }],
    [BeginTransactionDto, { mode: '2pc', gid: 'order-1', timeoutMs: 100, metadata: {}, wait: true }],
    [BeginTransactionDto, { mode: 'saga', steps: [{ name: 's1', ...branch }] }],
    [BeginTransactionDto, { mode: 'xa' }],
    [BeginTransactionDto, { mode: 'tcc', gid: null }],
    [BeginTransactionDto, { mode: 'tcc', gid: 'bad gid!' }],
    [BeginTransactionDto, { mode: 'tcc', timeoutMs: 99 }],
    [BeginTransactionDto, { mode: 'tcc', timeoutMs: 100.5 }],
    [BeginTransactionDto, { mode: 'tcc', timeoutMs: 86_400_001 }],
    [BeginTransactionDto, { mode: 'tcc', metadata: [] }],
    [BeginTransactionDto, { mode: 'tcc', branches: [] }],
    [BeginTransactionDto, { mode: 'tcc', branches: [1] }],
    [BeginTransactionDto, { mode: 'tcc', branches: [[branch]] }],
    [BeginTransactionDto, { mode: 'tcc', branches: [{ participant: 'bank' }] }],
    [BeginTransactionDto, { mode: 'tcc', branches: [{ ...branch, extra: 1 }] }],
    [BeginTransactionDto, { mode: 'tcc', branches: [{ ...branch, payload: 'x' }] }],
    [BeginTransactionDto, { mode: 'tcc', branches: Array.from({ length: 101 }, () => branch) }],
    [BeginTransactionDto, { mode: 'tcc', surprise: true }],
    [BeginTransactionDto, JSON.parse('{"mode":"tcc","__proto__":{"x":1}}')],
    [BeginTransactionDto, { mode: 'tcc', concurrent: 'yes' }],
    [BeginTransactionDto, { mode: 'msg', check: { participant: 'shop', action: 'dtx-msg-check' }, branches: [branch] }],
    [BeginTransactionDto, { mode: 'msg', check: { participant: 'shop', action: 'dtx-msg-check' }, branches: [branch], submit: true, wait: true }],
    [BeginTransactionDto, { mode: 'msg', check: { participant: 'shop' }, branches: [branch] }],
    [BeginTransactionDto, { mode: 'msg', check: { participant: 'shop', action: 'x', extra: 1 }, branches: [branch] }],
    [BeginTransactionDto, { mode: 'msg', check: 'shop', branches: [branch] }],
    [BeginTransactionDto, { mode: 'msg', check: { participant: 'sh op', action: 'x' }, branches: [branch] }],
    [BeginTransactionDto, { mode: 'msg', branches: [branch], submit: 'yes' }],
    [BeginTransactionDto, []],
    [BeginTransactionDto, undefined],
    [AddBranchDto, branch],
    [AddBranchDto, { ...branch, branchId: 'x'.repeat(129) }],
    [AddBranchDto, { participant: 'bank', action: 'de bit' }],
    [AddBranchDto, { participant: 'x'.repeat(65), action: 'debit' }],
    [DecideDto, {}],
    [DecideDto, undefined],
    [DecideDto, { wait: false }],
    [DecideDto, { wait: 'true' }],
    [DecideDto, { wait: true, extra: 1 }],
  ];
  const answer = async (pipe: { transform(value: unknown, metadata: ArgumentMetadata): unknown }, value: unknown, metatype: unknown): Promise<unknown> => {
    try {
      return { ok: JSON.parse(JSON.stringify(await pipe.transform(value, { type: 'body', metatype: metatype as ArgumentMetadata['metatype'] }))) as unknown };
    } catch (error) {
      return { refused: error instanceof ApiError ? error.getResponse() : String(error) };
    }
  };

  it.each(bodies.map(([metatype, body], i) => [i, metatype, body] as const))('answers body %i as class-validator does', async (_i, metatype, body) => {
    expect(await answer(fast, body, metatype)).toEqual(await answer(full, body, metatype));
  });

  it('leaves query and path values to ValidationPipe', async () => {
    expect(await fast.transform('x', { type: 'param', metatype: String })).toBe('x');
  });
});

describe('deeperThan', () => {
  it('agrees with jsonDepth and stops at the limit', () => {
    for (const depth of [0, 1, 5, 64, 65, 200_000]) {
      const value = nested(depth);
      expect(deeperThan(value, MAX_BODY_DEPTH)).toBe(jsonDepth(value) > MAX_BODY_DEPTH);
    }
    expect(deeperThan({ a: [1, { b: 2 }], c: 'x' }, 2)).toBe(true);
    expect(deeperThan({ a: [1, { b: 2 }], c: 'x' }, 3)).toBe(false);
  });
});
