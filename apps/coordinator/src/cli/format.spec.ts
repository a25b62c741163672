import { describe, expect, it } from 'vitest';
import type { HeldLocksPage, TransactionDetailView, TransactionPage, TransactionView } from '@nest-dtx/protocol';
import { compactJson, duration, fields, instant, labelled, orDash, table, truncate } from './format.js';
import { counts, heldLocks, transactionDetail, transactionPage } from './render.js';

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

  it('puts notes under their row, indented, without widening the columns', () => {
    const long = 'y'.repeat(120);
    expect(table(['A', 'B'], [['a1', 'b1'], ['a2', 'b2']], [[`note: ${long}`], undefined])).toBe(['A   B', 'a1  b1', `  note: ${long}`, 'a2  b2'].join('\n'));
  });
});

describe('labelled', () => {
  it('keeps the whole text, a string as it is and any other JSON on one line', () => {
    const long = `connect ECONNREFUSED 10.0.3.7:4001 ${'while the ledger was re-indexed '.repeat(5)}end`;
    expect(labelled('error', long)).toEqual([`error: ${long}`]);
    expect(labelled('error', { message: 'no', code: 7 })).toEqual(['error: {"message":"no","code":7}']);
    expect(labelled('error', null)).toEqual([]);
  });

  it('hangs the later lines of a text of several under the first', () => {
    expect(labelled('last error', 'Error: boom\n    at call (x.js:1)\r\n\n  at run (y.js:2)\n')).toEqual([
      'last error: Error: boom',
      '                at call (x.js:1)',
      '',
      '              at run (y.js:2)',
    ]);
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

describe('duration', () => {
  it('reads as people say a wait', () => {
    expect([0, 850, 1_000, 12_345, 59_999, 60_000, 245_000, 3_600_000, 7_800_000, 86_400_000 * 3 + 4 * 3_600_000].map(duration)).toEqual([
      '0 ms',
      '850 ms',
      '1.0 s',
      '12.3 s',
      '59.9 s',
      '1 min 00 s',
      '4 min 05 s',
      '1 h 00 min',
      '2 h 10 min',
      '3 d 04 h',
    ]);
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

  it('lists held locks, longest held first as the API answers, with the rows named and the next cursor', () => {
    const page: HeldLocksPage = {
      items: [
        {
          gid: 'tx-1', branchId: 'debit', participant: 'bank-a', action: 'at-debit', transactionStatus: 'active', count: 5,
          rows: [1, 2, 3, 4].map((n) => ({ table: 'public.accounts', key: `["a${n}"]` })), since: '2026-12-01T10:00:00.000Z', heldMs: 65_000,
        },
        { gid: 'tx-2', branchId: 'credit', participant: 'bank-b', action: 'at-credit', transactionStatus: 'committing', count: 1, rows: [{ table: 'public.accounts', key: '["b"]' }], since: '2026-12-01T10:00:30.000Z', heldMs: 900 },
      ],
      nextCursor: 'NEXT',
    };
    expect(heldLocks(page)).toBe(
      [
        'GID   BRANCH  PARTICIPANT  ACTION     TX STATUS   LOCKS  HELD        SINCE                 ROWS',
        'tx-1  debit   bank-a       at-debit   active      5      1 min 05 s  2026-12-01 10:00:00Z  public.accounts ["a1"], public.accounts ["a2"], public.accounts ["a3"] (+2 more)',
        'tx-2  credit  bank-b       at-credit  committing  1      900 ms      2026-12-01 10:00:30Z  public.accounts ["b"]',
        '',
        'more: --cursor NEXT',
      ].join('\n'),
    );
    expect(heldLocks({ items: [], nextCursor: null })).toBe('no locks held');
  });

  it("shows an AT transaction's locks in tx show, held or released", () => {
    const branch = { participant: 'bank-a', action: 'at-debit', status: 'prepared' as const, attempts: 1, lastError: null, result: null, waitingSince: null };
    const detail: TransactionDetailView = {
      ...view('tx-3', { mode: '2pc', status: 'active' }),
      traceId: null,
      traceUrl: null,
      branches: [
        { ...branch, branchId: 'debit', locks: { count: 3, rows: [{ table: 'public.accounts', key: '["a"]' }], since: '2026-12-01T10:00:00.000Z', releasedAt: null, heldMs: 2_500 } },
        { ...branch, branchId: 'credit', locks: { count: 1, rows: [{ table: 'public.accounts', key: '["b"]' }], since: '2026-12-01T10:00:01.000Z', releasedAt: '2026-12-01T10:00:01.300Z', heldMs: 300 } },
        { ...branch, branchId: 'plain', action: 'debit' },
      ],
      events: [],
    };
    const text = transactionDetail(detail);
    expect(text).toContain(
      [
        'Locks (AT):',
        'BRANCH  TABLE            KEY    SINCE                 HELD',
        'debit   public.accounts  ["a"]  2026-12-01 10:00:00Z  2.5 s (held)',
        'debit   (+2 more rows)          2026-12-01 10:00:00Z  2.5 s (held)',
        'credit  public.accounts  ["b"]  2026-12-01 10:00:01Z  300 ms (released 2026-12-01 10:00:01Z)',
      ].join('\n'),
    );
    expect(transactionDetail({ ...detail, branches: [detail.branches[2]] })).not.toContain('Locks');
  });

  it("shows a workflow's steps in recorded order with their kinds, a long-running one as waiting (since when), and the workflow's input and result", () => {
    const detail: TransactionDetailView = {
      ...view('wf-1', { mode: 'workflow', status: 'active' }),
      traceId: null,
      traceUrl: null,
      workflow: { participant: 'orders', name: 'placeOrder' },
      input: { orderId: 'o-1' },
      result: null,
      branches: [
        { branchId: '1', kind: 'tcc', participant: 'inventory', action: 'reserve', status: 'prepared', attempts: 1, lastError: null, result: null, waitingSince: null },
        { branchId: '2', kind: 'local', participant: 'orders', action: 'placeOrder', status: 'committed', attempts: 0, lastError: null, result: 4, waitingSince: null },
        { branchId: '3', kind: 'tcc', participant: 'payments', action: 'charge', status: 'pending', attempts: 3, lastError: null, result: null, waitingSince: '2026-12-01T10:00:05.000Z' },
      ],
      events: [],
    };
    const text = transactionDetail(detail);
    expect(text).toContain(
      [
        'STEP  KIND   PARTICIPANT  ACTION      STATUS                                       CALLS',
        '1     tcc    inventory    reserve     prepared                                     1',
        '2     local  orders       placeOrder  committed                                    0',
        '3     tcc    payments     charge      pending, waiting since 2026-12-01 10:00:05Z  3',
      ].join('\n'),
    );
    expect(text).toMatch(/workflow: +placeOrder on orders/);
    expect(text).toMatch(/input: +\{"orderId":"o-1"\}/);
    expect(text).not.toContain('BRANCH  PARTICIPANT');
  });

  it('shows errors whole, on lines of their own under the branch and the event, the tables staying narrow', () => {
    const error = `HTTP 503: {"message":"the ledger is being re-indexed, try again in a minute; account a-17 is locked by the nightly batch"}`;
    expect(error.length).toBeGreaterThan(80);
    const detail: TransactionDetailView = {
      ...view('tx-4', { status: 'committing', needsAttention: true }),
      traceId: null,
      traceUrl: null,
      branches: [
        { branchId: 'b1', participant: 'bank-a', action: 'debit', status: 'prepared', attempts: 3, lastError: error, result: null, waitingSince: null },
        { branchId: 'b2', participant: 'bank-b', action: 'credit', status: 'committed', attempts: 2, lastError: null, result: null, waitingSince: null },
      ],
      events: [
        { at: '2026-12-01T10:00:02.000Z', type: 'call', branchId: 'b1', from: 'prepared', to: 'prepared', detail: { phase: 'confirm', outcome: 'transient', attempt: 2, error } },
        { at: '2026-12-01T10:00:03.000Z', type: 'call', branchId: 'b2', from: 'prepared', to: 'committed', detail: { phase: 'confirm', outcome: 'ok', attempt: 2 } },
      ],
    };
    const text = transactionDetail(detail);
    expect(text).toContain(
      [
        'Branches:',
        'BRANCH  PARTICIPANT  ACTION  STATUS     CALLS',
        'b1      bank-a       debit   prepared   3',
        `  last error: ${error}`,
        'b2      bank-b       credit  committed  2',
        '',
        'History:',
        'AT                    EVENT  BRANCH  FROM      TO         DETAIL',
        '2026-12-01 10:00:02Z  call   b1      prepared  prepared   {"phase":"confirm","outcome":"transient","attempt":2}',
        `  error: ${error}`,
        '2026-12-01 10:00:03Z  call   b2      prepared  committed  {"phase":"confirm","outcome":"ok","attempt":2}',
      ].join('\n'),
    );
  });
});
