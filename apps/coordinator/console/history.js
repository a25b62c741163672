// How a transaction's history reads on its page: retries folded into one line each, and
// attempts counted the way an operator reads them. Pure functions of the admin API's events
// (GET /admin/transactions/{gid}: oldest first, every event), so they are unit-tested in node
// (apps/coordinator/src/console/history.spec.ts, typed by history.d.ts).

/** Where a call event's attempts are counted: its branch and its phase. */
const slotOf = (event) => `${event.branchId ?? ''}\u0000${event.detail?.phase ?? ''}`;

const isCall = (event) => event.type === 'call' && event.detail !== null && typeof event.detail === 'object';

/**
 * The attempt number of each call event within its branch and phase (1 for the first confirm of
 * a branch, whatever its try took), null for other events. The events' own `detail.attempt` is
 * the branch's call count over all its phases, which reads as "attempt 2" on a first confirm.
 */
export function phaseAttempts(events) {
  const seen = new Map();
  return events.map((event) => {
    if (!isCall(event)) return null;
    const slot = slotOf(event);
    const attempt = (seen.get(slot) ?? 0) + 1;
    seen.set(slot, attempt);
    return attempt;
  });
}

/**
 * The events as runs of indexes into `events`, in order: a run holds the calls to one branch in
 * one phase with one outcome that follow each other, and every other event is a run of its own.
 * Calls to other branches in between do not end a run, since one round of phase 2 calls every
 * branch still owed it (two failing branches alternate); any other event does (a status change,
 * the attention flag, an operator's retry), and so does a different outcome of the same branch
 * and phase. A run sits where its first event is.
 */
export function repeatRuns(events) {
  const runs = [];
  /** slot -> the open run of calls to it, with their outcome. */
  const open = new Map();
  events.forEach((event, index) => {
    if (!isCall(event)) {
      open.clear();
      runs.push([index]);
      return;
    }
    const slot = slotOf(event);
    const outcome = event.detail.outcome;
    const run = open.get(slot);
    if (run && run.outcome === outcome) {
      run.indexes.push(index);
      return;
    }
    const indexes = [index];
    open.set(slot, { outcome, indexes });
    runs.push(indexes);
  });
  return runs;
}
