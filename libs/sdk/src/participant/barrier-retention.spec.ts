import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';
import { BarrierRetention } from './barrier-retention.js';

/** A data layer that counts the retention job's deletes. */
function countingLayer(expiresRowsItself: boolean): DtxDataLayer & { deletes: number } {
  return {
    description: 'the fake layer',
    expiresRowsItself,
    deletes: 0,
    runPhase: () => Promise.reject(new Error('unused')),
    deleteExpiredBarrierRows(): Promise<number> {
      this.deletes++;
      return Promise.resolve(0);
    },
  };
}

const options = { name: 'loyalty', coordinatorUrl: 'http://127.0.0.1:7070', barrierRetentionIntervalMs: 1 };

describe('BarrierRetention', () => {
  it('runs its deletes on a layer whose rows stay until deleted', async () => {
    const layer = countingLayer(false);
    const retention = new BarrierRetention(layer, options);
    retention.onApplicationBootstrap();
    await sleep(50);
    await retention.onApplicationShutdown();
    expect(layer.deletes).toBeGreaterThan(0);
  });

  it('does not run on a layer that expires its rows itself (Redis)', async () => {
    const layer = countingLayer(true);
    const retention = new BarrierRetention(layer, { ...options, barrierRetentionMs: 30 * 24 * 60 * 60 * 1000 });
    retention.onApplicationBootstrap();
    await sleep(50);
    await retention.onApplicationShutdown();
    expect(layer.deletes).toBe(0);
  });
});
