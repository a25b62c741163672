import { describe, expect, it } from 'vitest';
import { BusinessFailure, DtxInboxError, DtxInboxErrorCode, type InboxMessage } from '@nest-dtx/sdk';
import { processBatch } from './batch.js';

const message = (id: string): InboxMessage => ({ body: id, headers: {} });
const quiet = { warn: () => undefined };

describe('processBatch', () => {
  it('counts in order and acknowledges what was counted, was a duplicate or can never be counted; only a failure that may pass is redelivered', async () => {
    const seen: string[] = [];
    const store = {
      count: (_source: 'rabbitmq' | 'nats', m: InboxMessage): Promise<'counted' | 'duplicate'> => {
        const id = String(m.body);
        seen.push(id);
        if (id === 'forged') throw new DtxInboxError(DtxInboxErrorCode.INVALID, 'no signature matches');
        if (id === 'malformed') throw new BusinessFailure('invalid payload: orderId');
        if (id === 'db-down') throw new Error('connect ECONNREFUSED');
        return Promise.resolve(id === 'again' ? 'duplicate' : 'counted');
      },
    };
    const ids = ['first', 'again', 'forged', 'malformed', 'db-down', 'last'];
    const { settlements, tally } = await processBatch('rabbitmq', ids, message, store, 0, quiet);
    expect(seen).toEqual(ids);
    expect(settlements).toEqual(['ack', 'ack', 'ack', 'ack', 'redeliver', 'ack']);
    expect(tally).toEqual({ counted: 2, duplicates: 1, dropped: 2, redeliver: 1 });
  });
});
