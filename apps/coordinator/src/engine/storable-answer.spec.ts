import { describe, expect, it } from 'vitest';
import type { CallOutcome, Json } from '@nest-dtx/protocol';
import { isUnstorableAnswer, MAX_ANSWER_DEPTH, refusedForItsData, storableOutcome, withAnswersDropped } from './storable-answer.js';

const NUL = String.fromCharCode(0);
const HIGH = String.fromCharCode(0xd800);
const nested = (depth: number): Json => {
  let value: Json = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

describe('storableOutcome (every transport, as answers enter the engine)', () => {
  it('passes storable answers through as they are', () => {
    const outcomes: CallOutcome[] = [
      { kind: 'ok', result: { a: ['😀', 1, null] } },
      { kind: 'failed', error: { message: 'no' } },
      { kind: 'transient', error: 'HTTP 503' },
      { kind: 'ok', result: nested(MAX_ANSWER_DEPTH) },
    ];
    for (const outcome of outcomes) expect(storableOutcome(outcome)).toBe(outcome);
  });

  it('keeps a success a success, with a marker for a result that cannot be stored', () => {
    for (const result of [`a${NUL}`, { [`k${HIGH}`]: 1 }, nested(MAX_ANSWER_DEPTH + 1)]) {
      const kept = storableOutcome({ kind: 'ok', result });
      expect(kept.kind).toBe('ok');
      expect(kept.kind === 'ok' && isUnstorableAnswer(kept.result)).toBe(true);
    }
    // Only the markers this process made count: a participant's body that looks the same is its own answer.
    expect(isUnstorableAnswer({ error: 'UNSTORABLE_ANSWER', message: 'x' })).toBe(false);
  });

  it('replaces what cannot be stored in refusals, transient texts and the locks of an AT answer', () => {
    expect(storableOutcome({ kind: 'failed', error: { message: `no${HIGH}` } })).toEqual({ kind: 'failed', error: { message: 'no\ufffd' } });
    expect(storableOutcome({ kind: 'transient', error: `reset${NUL}` })).toEqual({ kind: 'transient', error: 'reset\ufffd' });
    const withLocks = storableOutcome({ kind: 'ok', result: {}, locks: { count: 1, rows: [{ table: `t${NUL}`, key: '[1]' }] } });
    expect(withLocks).toEqual({ kind: 'ok', result: {}, locks: { count: 1, rows: [{ table: 't\ufffd', key: '[1]' }] } });
    const deepRefusal = storableOutcome({ kind: 'failed', error: nested(MAX_ANSWER_DEPTH + 1) });
    expect(deepRefusal.kind === 'failed' && isUnstorableAnswer(deepRefusal.error)).toBe(true);
  });
});

describe('the last resort of a write Postgres refused for its data', () => {
  it('applies to data exceptions and program limits only', () => {
    for (const code of ['22P05', '22021', '22P02', '54001']) expect(refusedForItsData({ code })).toBe(true);
    for (const code of ['23505', '40001', '08006', '57P01', undefined]) expect(refusedForItsData({ code })).toBe(false);
  });

  it('replaces every answer and every error of a call event by a marker, and nothing else', () => {
    const dropped = withAnswersDropped(
      [{ branchId: 'b1', result: { a: 1 } as Json, calls: 1 }, { branchId: 'b2', lastError: 'x' as Json, calls: 1 }, { branchId: 'b3', calls: 0 }],
      [{ type: 'call', branchId: 'b2', detail: { phase: 'try', error: 'x' } }, { type: 'status', detail: { reason: null } }],
      Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' }),
    );
    expect(isUnstorableAnswer(dropped.answers[0].result)).toBe(true);
    expect(isUnstorableAnswer(dropped.answers[1].lastError)).toBe(true);
    expect(dropped.answers[2]).toEqual({ branchId: 'b3', calls: 0 });
    expect(dropped.events[0].detail).toEqual({ phase: 'try', error: expect.objectContaining({ error: 'UNSTORABLE_ANSWER' }) as unknown });
    expect(dropped.events[1]).toEqual({ type: 'status', detail: { reason: null } });
  });
});
