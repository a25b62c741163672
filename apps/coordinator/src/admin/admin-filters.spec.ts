import { describe, expect, it } from 'vitest';
import { ApiError } from '../common/api-error.js';
import { dateFilter, decodeTransactionCursor, encodeTransactionCursor, isKeysetTime } from './admin-filters.js';
import { decodeLockCursor } from './lock-views.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const fieldOf = (run: () => unknown): unknown => {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiError) return (error.getResponse() as { field?: unknown }).field;
    throw error;
  }
  return null;
};

describe('admin date filters', () => {
  it('take real dates of years 1 to 9999', () => {
    expect(dateFilter('2026-12-01', 'from')?.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(dateFilter('2026-12-01T10:00:00+02:00', 'to')?.toISOString()).toBe('2026-12-01T08:00:00.000Z');
    expect(dateFilter('0001-01-01', 'from')?.getUTCFullYear()).toBe(1);
    expect(dateFilter('9999-12-31T23:59:59Z', 'to')?.getUTCFullYear()).toBe(9999);
    expect(dateFilter(undefined, 'from')).toBeUndefined();
  });

  it('refuse what Postgres or the calendar would not take, naming the field', () => {
    for (const value of ['0000-01-01', '0000-00-00', '2020-02-30', '2026-W01', '+275760-09-13', '-271821-04-20', '9999999-01-01', '2019-02-29']) {
      expect(fieldOf(() => dateFilter(value, 'from'))).toBe('from');
      expect(fieldOf(() => dateFilter(value, 'to'))).toBe('to');
    }
  });
});

describe('admin cursors', () => {
  it('round-trip what the API wrote', () => {
    const position = { createdAt: '2026-12-01T10:00:00.123456Z', gid: 'order-1' };
    expect(decodeTransactionCursor(encodeTransactionCursor(position))).toEqual(position);
    expect(isKeysetTime('2024-02-29T23:59:59.000000Z')).toBe(true);
  });

  it('refuse garbage and crafted positions with 400 naming cursor', () => {
    const crafted = [
      b64('garbage'),
      b64('1|g'),
      b64('+275760-01-01T00:00:00Z|g'),
      b64('0000-01-01T00:00:00.000000Z|g'),
      b64('2026-02-30T00:00:00.000000Z|g'),
      b64('2026-01-01T24:00:00.000000Z|g'),
      b64('2026-01-01T00:00:00.000000Z|g\u0000'),
      b64('2026-01-01T00:00:00.000000Z|g|h'),
      b64('2026-01-01T00:00:00.000000Z|'),
      '',
    ];
    for (const cursor of crafted) expect(fieldOf(() => decodeTransactionCursor(cursor))).toBe('cursor');
  });

  it('of the locks list: null for a huge date or wrong types', () => {
    for (const value of [
      ['99999-01-01T00:00:00.000000Z', 'g', 'b'],
      ['2026-01-01T00:00:00.000000Z', 1, 'b'],
      ['2026-01-01T00:00:00.000000Z', 'g', 'b\u0000'],
      { heldSince: '2026-01-01', gid: 'g' },
    ]) {
      expect(decodeLockCursor(b64(JSON.stringify(value)))).toBeNull();
    }
  });
});
