import { describe, expect, it } from 'vitest';
import { branchLocksView, decodeLockCursor, encodeLockCursor, heldLockView } from './lock-views.js';

const locks = { count: 25, rows: [{ table: 'public.accounts', key: '["alice"]' }] };
const since = new Date('2026-12-01T10:00:00.000Z');

describe('branchLocksView', () => {
  it('while held: no releasedAt, held until the read', () => {
    expect(branchLocksView({ locks, lockedAt: since, releasedAt: null }, new Date('2026-12-01T10:00:02.500Z'))).toEqual({
      count: 25,
      rows: locks.rows,
      since: '2026-12-01T10:00:00.000Z',
      releasedAt: null,
      heldMs: 2500,
    });
  });

  it('once released: held until the release, whenever it is read', () => {
    const view = branchLocksView({ locks, lockedAt: since, releasedAt: new Date('2026-12-01T10:00:00.120Z') }, new Date('2026-12-02T00:00:00.000Z'));
    expect(view).toMatchObject({ releasedAt: '2026-12-01T10:00:00.120Z', heldMs: 120 });
  });

  it('is never negative, and shows nothing for a stored value that is not BranchLocks', () => {
    expect(branchLocksView({ locks, lockedAt: since, releasedAt: null }, new Date(since.getTime() - 5))?.heldMs).toBe(0);
    expect(branchLocksView({ locks: { rows: [] }, lockedAt: since, releasedAt: null }, since)).toBeNull();
  });
});

describe('heldLockView', () => {
  it('names the branch, its transaction status, the rows and the time held so far', () => {
    const stored = { gid: 'g1', branchId: 'b1', participant: 'bank-a', action: 'at-debit', transactionStatus: 'active' as const, locks, lockedAt: since };
    expect(heldLockView(stored, new Date('2026-12-01T10:01:00.000Z'))).toEqual({
      gid: 'g1',
      branchId: 'b1',
      participant: 'bank-a',
      action: 'at-debit',
      transactionStatus: 'active',
      count: 25,
      rows: locks.rows,
      since: '2026-12-01T10:00:00.000Z',
      heldMs: 60_000,
    });
    expect(heldLockView({ ...stored, locks: 'garbage' }, since)).toBeNull();
  });
});

describe('the cursor of GET /admin/locks', () => {
  it('gives back the position it was made from, microseconds included', () => {
    const position = { lockedAt: '2026-12-01T10:00:00.123456Z', gid: 'order-4711', branchId: 'b-1' };
    const cursor = encodeLockCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeLockCursor(cursor)).toEqual(position);
  });

  it('is null for anything this API did not make', () => {
    const encode = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8').toString('base64url');
    for (const cursor of [encode('not json'), encode(['2026-12-01T10:00:00Z', 'g']), encode(['yesterday', 'g', 'b']), encode(['2026-12-01T10:00:00Z', 'g', '']), encode({ a: 1 })]) {
      expect(decodeLockCursor(cursor)).toBeNull();
    }
  });
});
