// Types of history.js, a browser module served as written (no build step), for its unit spec.
import type { TransactionEventView } from '@nest-dtx/protocol';

type HistoryEvent = Pick<TransactionEventView, 'type' | 'branchId' | 'detail'>;

export function phaseAttempts(events: readonly HistoryEvent[]): (number | null)[];
export function repeatRuns(events: readonly HistoryEvent[]): number[][];
