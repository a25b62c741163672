import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@nest-dtx/protocol';
import { InProcessTxEventBus, type BusMessage } from '../bus/tx-event-bus.js';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig, loadCoordinatorEnv } from '../config/coordinator.config.js';
import type { GateSnapshot } from '../overload/participant-gate.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { DatabaseTime } from '../store/database-clock.js';
import type { ParticipantRecord } from '../store/records.js';
import type { ParticipantStore } from '../store/participant.store.js';
import { participantLoadView } from './participant-load.js';
import { ParticipantsService } from './participants.service.js';

const record = (over: Partial<ParticipantRecord> = {}): ParticipantRecord => ({
  name: 'Bank-A', transport: 'http', endpoint: 'http://127.0.0.1:1/tx', host: null, port: null, publish: false, actions: [],
  ownerKeyDigest: null, secretGeneration: 1, previousSecretGeneration: null, previousSecretUntil: null, callHeaders: {}, maxInFlight: null, updatedAt: new Date(),
  ...over,
});

/** The participants table, shared by the "instances" of a test as Postgres would be. */
class FakeStore {
  readonly rows = new Map<string, ParticipantRecord>();
  reads = 0;

  constructor(...records: ParticipantRecord[]) {
    for (const r of records) this.rows.set(r.name.toLowerCase(), r);
  }

  list(): Promise<ParticipantRecord[]> {
    return Promise.resolve([...this.rows.values()]);
  }

  find(name: string): Promise<ParticipantRecord | null> {
    this.reads++;
    return Promise.resolve(this.rows.get(name.toLowerCase()) ?? null);
  }

  setMaxInFlight(name: string, maxInFlight: number | null): Promise<ParticipantRecord | null> {
    const found = this.rows.get(name.toLowerCase());
    if (!found) return Promise.resolve(null);
    const saved = { ...found, maxInFlight, updatedAt: new Date() };
    this.rows.set(name.toLowerCase(), saved);
    return Promise.resolve(saved);
  }
}

/** One coordinator instance: its own bus end, gates and cache, over the shared store. */
async function instance(store: FakeStore, env: Record<string, string> = {}) {
  const config = new CoordinatorConfig(
    loadCoordinatorEnv({ INSTANCE_ID: 'spec', SIGNING_SECRET: 'x'.repeat(32), PARTICIPANT_MAX_IN_FLIGHT: '64', PARTICIPANT_INITIAL_IN_FLIGHT: '8', ...env }),
  );
  const bus = new InProcessTxEventBus();
  const published: BusMessage[] = [];
  bus.subscribe((message) => published.push(message));
  const gates = new ParticipantGates(config);
  const service = new ParticipantsService(store as unknown as ParticipantStore, bus, config, gates, new DatabaseTime());
  await service.onModuleInit();
  return { service, gates, bus, published };
}

const snapshot = (over: Partial<GateSnapshot> = {}): GateSnapshot => ({
  inFlight: 2, queued: 5, limit: 9, maxInFlight: 64, breaker: 'closed', breakerRetryInMs: null, breakerOpened: 0,
  refused: { breakerOpen: 1, queueFull: 2, queueTimeout: 3 }, granted: 40, waitedMsTotal: 120,
  ...over,
});

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
};

describe('participantLoadView', () => {
  it('is null for a participant this instance has no gate for', () => {
    expect(participantLoadView(null)).toBeNull();
  });

  it('shows the gate: in flight, queued, limit and ceiling, breaker, the calls not made', () => {
    expect(participantLoadView(snapshot())).toEqual({
      inFlight: 2, queued: 5, limit: 9, maxInFlight: 64, breaker: 'closed', breakerRetryInMs: null,
      notMade: { breakerOpen: 1, queueFull: 2, queueTimeout: 3 },
    });
  });

  it('gives the time to the next probe only while the breaker is open', () => {
    expect(participantLoadView(snapshot({ breaker: 'open', breakerRetryInMs: 750 }))?.breakerRetryInMs).toBe(750);
    expect(participantLoadView(snapshot({ breaker: 'half_open', breakerRetryInMs: 0 }))?.breakerRetryInMs).toBeNull();
  });
});

describe('ParticipantsService.setLimits', () => {
  it('answers 404 NOT_FOUND for a name not registered, and changes nothing', async () => {
    const store = new FakeStore(record());
    const { service, published } = await instance(store);
    const refused = await service.setLimits('nobody', 5).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).getStatus()).toBe(404);
    expect((refused as ApiError).getResponse()).toMatchObject({ error: ErrorCode.NOT_FOUND });
    expect(published).toEqual([]);
  });

  it('writes the ceiling, announces the change on the bus, and answers the admin view (load null before any call)', async () => {
    const store = new FakeStore(record());
    const { service, gates, published } = await instance(store);
    const view = await service.setLimits('bank-a', 12);
    expect(store.rows.get('bank-a')?.maxInFlight).toBe(12);
    expect(published).toEqual([{ kind: 'participant', name: 'Bank-A' }]);
    expect(view).toMatchObject({ name: 'Bank-A', maxInFlight: 12, load: null });
    // No gate made for it: one comes with the first call, with the ceiling the record says.
    expect(gates.snapshotOf('bank-a')).toBeNull();
  });

  it("applies the ceiling to this instance's gate at once, and null brings back PARTICIPANT_MAX_IN_FLIGHT", async () => {
    const store = new FakeStore(record());
    const { service, gates } = await instance(store);
    gates.gate('Bank-A', null);
    expect(gates.snapshotOf('bank-a')).toMatchObject({ maxInFlight: 64, limit: 8 });

    const lowered = await service.setLimits('BANK-A', 3);
    expect(lowered.load).toMatchObject({ maxInFlight: 3, limit: 3, inFlight: 0, queued: 0, breaker: 'closed' });
    expect(gates.snapshotOf('bank-a')?.maxInFlight).toBe(3);

    const cleared = await service.setLimits('bank-a', null);
    expect(cleared.maxInFlight).toBeNull();
    expect(cleared.load?.maxInFlight).toBe(64);
  });

  it("lists each participant with this instance's gate", async () => {
    const store = new FakeStore(record(), record({ name: 'bank-b', maxInFlight: 7 }));
    const { service, gates } = await instance(store);
    gates.gate('bank-b', 7);
    const list = await service.listForAdmin();
    expect(list.map((p) => [p.name, p.maxInFlight, p.load?.maxInFlight ?? null])).toEqual([
      ['Bank-A', null, null],
      ['bank-b', 7, 7],
    ]);
  });
});

describe('an operator ceiling set on another instance', () => {
  it('reaches the gate this instance has for the participant when the change arrives on the bus', async () => {
    const store = new FakeStore(record());
    const here = await instance(store);
    const there = await instance(store);
    here.gates.gate('bank-a', null);
    expect(await here.service.find('bank-a')).toMatchObject({ maxInFlight: null });

    await there.service.setLimits('bank-a', 5);
    // What Redis carries from the other instance to this one.
    here.bus.publish({ kind: 'participant', name: 'Bank-A' });
    await until(() => here.gates.snapshotOf('bank-a')?.maxInFlight === 5);
    expect(await here.service.find('bank-a')).toMatchObject({ maxInFlight: 5 });
  });

  it('makes no gate, and reads nothing, for a participant this instance has not called', async () => {
    const store = new FakeStore(record());
    const here = await instance(store);
    const readsBefore = store.reads;
    here.bus.publish({ kind: 'participant', name: 'bank-a' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(here.gates.snapshotOf('bank-a')).toBeNull();
    expect(store.reads).toBe(readsBefore);
  });
});
