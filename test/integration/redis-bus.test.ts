/** The Redis bus against the real Redis: what one instance publishes, every other instance hears. */
import { afterEach, describe, expect, it } from 'vitest';
import { RedisTxEventBus, type BusMessage } from '../../apps/coordinator/src/bus/tx-event-bus.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const buses: RedisTxEventBus[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bus(): RedisTxEventBus {
  const created = new RedisTxEventBus(REDIS_URL);
  buses.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.onModuleDestroy()));
});

describe('RedisTxEventBus', () => {
  it('delivers a message published on one instance to the others, and once to the publisher itself', async () => {
    const a = bus();
    const b = bus();
    const heardByA: BusMessage[] = [];
    const heardByB: BusMessage[] = [];
    a.subscribe((m) => heardByA.push(m));
    b.subscribe((m) => heardByB.push(m));
    await sleep(300); // let both subscriptions reach Redis
    const gid = `bus-${Date.now()}`;
    a.publish({ kind: 'tx', gid, status: 'committed' });
    await sleep(300);
    expect(heardByB.filter((m) => m.kind === 'tx' && m.gid === gid)).toEqual([{ kind: 'tx', gid, status: 'committed' }]);
    expect(heardByA.filter((m) => m.kind === 'tx' && m.gid === gid)).toHaveLength(1);
  });

  it('still delivers locally when Redis cannot be reached', () => {
    const unreachable = new RedisTxEventBus('redis://127.0.0.1:1');
    buses.push(unreachable);
    const heard: BusMessage[] = [];
    unreachable.subscribe((m) => heard.push(m));
    unreachable.publish({ kind: 'participant', name: 'x' });
    expect(heard).toEqual([{ kind: 'participant', name: 'x' }]);
  });
});
