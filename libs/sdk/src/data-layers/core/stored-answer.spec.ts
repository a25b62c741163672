import { describe, expect, it } from 'vitest';
import type { Json } from '@nest-dtx/protocol';
import { ONGOING_MARKER_TEXT, readStoredAnswer, storedAnswerText } from './stored-answer.js';

describe('a barrier row’s stored answer', () => {
  it('keeps any JSON result as it is, and reads it back', () => {
    const results: Json[] = [null, 0, 42.5, 'text', true, [1, { a: 2 }], { reserved: 10 }, { nested: { $dtx: 'ongoing' } }];
    for (const result of results) {
      expect(readStoredAnswer(storedAnswerText({ kind: 'final', result }))).toEqual({ kind: 'final', result });
    }
    expect(storedAnswerText({ kind: 'final', result: { reserved: 10 } })).toBe('{"reserved":10}');
  });

  it('keeps the ongoing marker as one fixed text, which SQL and Lua compare byte for byte', () => {
    expect(ONGOING_MARKER_TEXT).toBe('{"$dtx":"ongoing"}');
    expect(storedAnswerText({ kind: 'ongoing' })).toBe(ONGOING_MARKER_TEXT);
    expect(readStoredAnswer(ONGOING_MARKER_TEXT)).toEqual({ kind: 'ongoing' });
    // As Postgres gives jsonb back as text: spaced.
    expect(readStoredAnswer('{"$dtx": "ongoing"}')).toEqual({ kind: 'ongoing' });
  });

  it('never reads a business result back as the marker: a result with the marker’s member is kept wrapped', () => {
    for (const result of [{ $dtx: 'ongoing' }, { $dtx: 'result', value: 1 }, { $dtx: 7, other: true }] as Json[]) {
      const text = storedAnswerText({ kind: 'final', result });
      expect(text).not.toBe(ONGOING_MARKER_TEXT);
      expect(readStoredAnswer(text)).toEqual({ kind: 'final', result });
    }
  });

  it('reads nothing stored (a phase-2 row, a row of an older version) as a final null', () => {
    expect(readStoredAnswer(null)).toEqual({ kind: 'final', result: null });
  });
});
