import { describe, expect, it } from 'vitest';
import type { TransactionPage, TransactionView } from '@nest-dtx/protocol';
import { compactJson, fields, instant, orDash, table, truncate } from './format.js';
import { counts, transactionPage } from './render.js';

describe('table', () => {
  it('pads each column to its widest cell, two spaces apart, without trailing spaces', () => {
    expect(table(['GID', 'STATUS', 'N'], [['a-long-gid', 'committed', '1'], ['b', 'active', '12']])).toBe(
      ['GID         STATUS     N', 'a-long-gid  committed  1', 'b           active     12'].join('\n'),
    );
  });

  it('is the header alone without rows, and tolerates short rows', () => {
    expect(table(['A', 'B'], [])).toBe('A  B');
    expect(table(['A', 'B'], [['x']])).toBe('A  B\nx');
  });

  it('counts characters, not bytes, for non-ASCII cells', () => {
    expect(table(['NAME', 'X'], [['zoë', '1']])).toBe('NAME  X\nzoë   1');
  });
});

describe('fields', () => {
  it('aligns the values after the longest label', () => {
    expect(fields([['gid', 'g1'], ['needs attention', 'no'], ['metadata', '']])).toBe(['gid:              g1', 'needs attention:  no', 'metadata:'].join('\n'));
  });
});

describe('cells', () => {
  it('shows instants in UTC to the second', () => {
    expect(instant('2026-12-01T16:50:38.123Z')).toBe('2026-12-01 16:50:38Z');
    expect(instant(null)).toBe('-');
    expect(instant('soon')).toBe('soon');
  });

  it('puts JSON on one line and cuts it with an ellipsis', () => {
    expect(compactJson({ a: 1, b: 'two words' })).toBe('{"a":1,"b":"two words"}');
    expect(compactJson('line\nbreak')).toBe('line break');
    expect(compactJson(null)).toBe('');
    expect(compactJson({ text: 'x'.repeat(100) }, 20)).toBe(`{"text":"${'x'.repeat(10)}…`);
    expect(truncate('abc', 3)).toBe('abc');
    expect(orDash(null)).toBe('-');
    expect(orDash(0)).toBe('0');
  });
});

const view = (gid: string, overrides: Partial<TransactionView> = {}): TransactionView => ({
  gid,
  mode: 'tcc',
  status: 'committed',
  reason: null,
  createdAt: '2026-12-01T10:00:00.000Z',
  updatedAt: '2026-12-01T10:00:01.000Z',
  deadline: '2026-12-01T10:01:00.000Z',
  metadata: {},
  needsAttention: false,
  branches: [],
  ...overrides,
});

describe('rendered answers', () => {
  it('lists transactions, flags attention, and gives the next cursor', () => {
    const page: TransactionPage = {
      items: [view('tx-2', { status: 'committing', needsAttention: true }), view('tx-1', { status: 'rolled_back', reason: 'branch_failed' })],
      nextCursor: 'CURSOR',
    };
    expect(transactionPage(page)).toBe(
      [
        'GID   MODE  STATUS       REASON         ATTENTION  BRANCHES  CREATED               UPDATED',
        'tx-2  tcc   committing   -              yes        0         2026-12-01 10:00:00Z  2026-12-01 10:00:01Z',
        'tx-1  tcc   rolled_back  branch_failed  -          0         2026-12-01 10:00:00Z  2026-12-01 10:00:01Z',
        '',
        'more: --cursor CURSOR',
      ].join('\n'),
    );
    expect(transactionPage({ items: [], nextCursor: null })).toBe('no transactions');
  });

  it('counts by status and mode', () => {
    expect(counts({ byStatus: { committed: 3, active: 1 }, byMode: { tcc: 4 }, needsAttention: 1, total: 4 })).toBe(
      ['STATUS     COUNT', 'committed  3', 'active     1', '', 'MODE  COUNT', 'tcc   4', '', 'needs attention:  1', 'total:            4'].join('\n'),
    );
  });
});
