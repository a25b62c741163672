import type { Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { BusinessFailure, DtxInboxError, type InboxMessage } from '@nest-dtx/sdk';
import type { EventStore } from './event-store.js';
import type { EventSource } from './event-names.js';

/** What becomes of a processed message: acknowledged (counted, a duplicate, or dropped for good), or handed back to be redelivered. */
export type Settlement = 'ack' | 'redeliver';

export interface BatchTally {
  counted: number;
  duplicates: number;
  dropped: number;
  redeliver: number;
}

/**
 * Processes one batch, one message after the other (after `delayMs` each), and says what to do
 * with each. The caller acknowledges only once the whole batch is through: one acknowledgement
 * round per batch, and never before receive() has returned. So a consumer killed halfway
 * through a batch has counted some messages it never acknowledged; the broker redelivers them
 * and the inbox's barrier recognises them as duplicates.
 */
export async function processBatch<M>(
  source: EventSource,
  messages: readonly M[],
  inboxMessage: (message: M) => InboxMessage,
  store: Pick<EventStore, 'count'>,
  delayMs: number,
  logger: Pick<Logger, 'warn'>,
): Promise<{ settlements: Settlement[]; tally: BatchTally }> {
  const tally: BatchTally = { counted: 0, duplicates: 0, dropped: 0, redeliver: 0 };
  const settlements: Settlement[] = [];
  for (const message of messages) {
    if (delayMs > 0) await delay(delayMs);
    try {
      const outcome = await store.count(source, inboxMessage(message));
      tally[outcome === 'counted' ? 'counted' : 'duplicates']++;
      settlements.push('ack');
    } catch (error) {
      if (error instanceof DtxInboxError || error instanceof BusinessFailure) {
        // Refused before anything was written, and refused again on every redelivery: drop it.
        logger.warn(`${source}: dropping a message: ${error instanceof DtxInboxError ? `${error.code}: ` : ''}${error.message}`);
        tally.dropped++;
        settlements.push('ack');
      } else {
        logger.warn(`${source}: a message failed (${(error as Error).message}); it will be redelivered`);
        tally.redeliver++;
        settlements.push('redeliver');
      }
    }
  }
  return { settlements, tally };
}

export const describeTally = (t: BatchTally): string =>
  `${t.counted} counted, ${t.duplicates} duplicate(s)${t.dropped ? `, ${t.dropped} dropped` : ''}${t.redeliver ? `, ${t.redeliver} to redeliver` : ''}`;
