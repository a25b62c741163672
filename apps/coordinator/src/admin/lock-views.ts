import { ID_PATTERN, readBranchLocks, type BranchLocksView, type HeldLockView } from '@nest-dtx/protocol';
import { isKeysetTime } from './admin-filters.js';
import type { HeldLockPosition, StoredBranchLocks, StoredHeldLock } from '../store/records.js';

/**
 * Milliseconds from `since` to `until`. Both come from the database's clock (now() there), so
 * no clock of another host enters; never negative.
 */
const heldFor = (since: Date, until: Date): number => Math.max(0, until.getTime() - since.getTime());

/**
 * A branch's locks as GET /admin/transactions/{gid} shows them, `now` being the database's
 * time of the read. Null when the stored value is not BranchLocks (nothing to show).
 */
export function branchLocksView(stored: StoredBranchLocks, now: Date): BranchLocksView | null {
  const locks = readBranchLocks(stored.locks);
  if (!locks) return null;
  return {
    count: locks.count,
    rows: locks.rows,
    since: stored.lockedAt.toISOString(),
    releasedAt: stored.releasedAt ? stored.releasedAt.toISOString() : null,
    heldMs: heldFor(stored.lockedAt, stored.releasedAt ?? now),
  };
}

/** A branch holding locks now, as GET /admin/locks lists it; null when its stored value is not BranchLocks. */
export function heldLockView(stored: StoredHeldLock, now: Date): HeldLockView | null {
  const locks = readBranchLocks(stored.locks);
  if (!locks) return null;
  return {
    gid: stored.gid,
    branchId: stored.branchId,
    participant: stored.participant,
    action: stored.action,
    transactionStatus: stored.transactionStatus,
    count: locks.count,
    rows: locks.rows,
    since: stored.lockedAt.toISOString(),
    heldMs: heldFor(stored.lockedAt, now),
  };
}

export function encodeLockCursor(position: HeldLockPosition): string {
  return Buffer.from(JSON.stringify([position.lockedAt, position.gid, position.branchId]), 'utf8').toString('base64url');
}

/** The position a cursor this API returned names; null for anything else. */
export function decodeLockCursor(cursor: string): HeldLockPosition | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || !parsed.every((part) => typeof part === 'string' && part.length > 0)) return null;
  const [lockedAt, gid, branchId] = parsed as [string, string, string];
  // Strictly what encodeLockCursor wrote: anything else reaching Postgres (year 0, a huge year, a NUL in an id) would be a 500.
  if (!isKeysetTime(lockedAt) || !ID_PATTERN.test(gid) || !ID_PATTERN.test(branchId)) return null;
  return { lockedAt, gid, branchId };
}
