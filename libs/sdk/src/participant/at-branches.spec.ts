import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import { finalAnswer } from '../data-layers/core/ongoing-answer.js';
import type { BranchKey } from '../data-layers/core/barrier-sql.js';
import type { AtDataLayer, AtTable, BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { AtBranches } from './at-branches.js';
import { BranchBarrier } from './barrier.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { checkParticipantOptions } from './options-check.js';
import { MSG_CHECK_ACTION, type ParticipantExplorer, type RegisteredAction } from './participant.explorer.js';
import { ParticipantSchema } from './participant-schema.js';
import type { ParticipantModuleOptions } from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';

type Handle = { handle: string };

/** An AT data layer that records what it is asked and answers as told. */
class FakeAt implements AtDataLayer<Handle> {
  readonly asked: string[] = [];
  readonly deleted: BranchKey[][] = [];
  installedWith: { tables: readonly string[]; installTriggers: boolean } | null = null;
  leftovers: BranchKey[][] = [];

  install(tables: readonly string[], options: { installTriggers: boolean }): Promise<AtTable[]> {
    this.installedWith = { tables, ...options };
    return Promise.resolve(tables.map((name) => ({ name: `public.${name}`, keyColumns: ['id'], installed: true })));
  }

  async prepare(call: PhaseCallBody, work: BusinessWork<Handle>, options: { lockWaitMs: number }): Promise<BarrierOutcome> {
    this.asked.push(`prepare ${call.gid} wait=${options.lockWaitMs}`);
    const result = finalAnswer(await work({ handle: 'at-tx' }), 'AtAction');
    return { kind: 'ok', result, duplicate: false, skipped: false, locks: { count: 1, rows: [{ table: 'public.accounts', key: '["a"]' }] } };
  }

  commit(call: PhaseCallBody): Promise<BarrierOutcome> {
    this.asked.push(`commit ${call.gid}`);
    return Promise.resolve({ kind: 'ok', result: null, duplicate: false, skipped: false });
  }

  rollback(call: PhaseCallBody): Promise<BarrierOutcome> {
    this.asked.push(`rollback ${call.gid}`);
    return Promise.resolve({ kind: 'failed', message: 'dirty', details: { reason: 'at_dirty_row' } });
  }

  deleteCommitted(keys: readonly BranchKey[]): Promise<{ undo: number; locks: number }> {
    this.deleted.push([...keys]);
    return Promise.resolve({ undo: keys.length, locks: keys.length });
  }

  committedLeftovers(): Promise<BranchKey[]> {
    return Promise.resolve(this.leftovers.shift() ?? []);
  }

  readUnlocked<T>(): Promise<T> {
    return Promise.reject(new Error('unused'));
  }
}

class FakeLayer implements DtxDataLayer<Handle> {
  readonly description = 'the fake layer';
  at?: AtDataLayer<Handle>;
  readonly barrierCalls: PhaseCallBody[] = [];

  runPhase(call: PhaseCallBody): Promise<BarrierOutcome> {
    this.barrierCalls.push(call);
    return Promise.resolve({ kind: 'ok', result: null, duplicate: false, skipped: false });
  }

  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

const AT_DEBIT: RegisteredAction = { name: 'debit', mode: '2pc', xa: false, at: true, handlers: { prepare: () => ({ debited: 5 }) } };

function explorerOf(actions: RegisteredAction[]): ParticipantExplorer {
  const all = [MSG_CHECK_ACTION, ...actions];
  return { get: (name: string, mode: string) => all.find((a) => a.name === name && a.mode === mode), list: () => all } as unknown as ParticipantExplorer;
}

function setUp(options: Partial<ParticipantModuleOptions> = {}, actions = [AT_DEBIT]) {
  const layer = new FakeLayer();
  const at = new FakeAt();
  layer.at = at;
  const all: ParticipantModuleOptions = { name: 'wallet', coordinatorUrl: 'http://127.0.0.1:7070', at: { tables: ['accounts'] }, ...options };
  const explorer = explorerOf(actions);
  const schema = new ParticipantSchema(layer, all, explorer);
  const branches = new AtBranches(layer, all, explorer, schema);
  const dispatcher = new BranchDispatcher(explorer, new BranchBarrier(layer, all), new PreparedTransactions(layer), branches, all, schema);
  return { layer, at, branches, dispatcher };
}

const call = (gid: string, phase: 'prepare' | 'commit' | 'rollback'): PhaseCallBody => ({ gid, branchId: 'b1', mode: '2pc', action: 'debit', phase, payload: {} });

afterEach(() => {
  vi.useRealTimers();
});

describe('AT actions', () => {
  it('run their three phases through the AT data layer, never the plain barrier, and answer the locks of a prepare', async () => {
    const { layer, at, dispatcher } = setUp({ at: { tables: ['accounts'], lockWaitMs: 250 } });
    expect(await dispatcher.dispatch(call('g1', 'prepare'))).toEqual({
      kind: 'ok',
      result: { debited: 5 },
      locks: { count: 1, rows: [{ table: 'public.accounts', key: '["a"]' }] },
    });
    expect(await dispatcher.dispatch(call('g1', 'commit'))).toEqual({ kind: 'ok', result: null });
    expect(await dispatcher.dispatch(call('g1', 'rollback'))).toEqual({ kind: 'failed', message: 'dirty', details: { reason: 'at_dirty_row' } });
    expect(at.asked).toEqual(['prepare g1 wait=250', 'commit g1', 'rollback g1']);
    expect(layer.barrierCalls).toEqual([]);
  });

  it('install their triggers at start-up on the tables the options name', async () => {
    const { at, branches } = setUp({ at: { tables: ['accounts', 'ledger'], installTriggers: false } });
    await branches.onApplicationBootstrap();
    expect(at.installedWith).toEqual({ tables: ['accounts', 'ledger'], installTriggers: false });
    await branches.onApplicationShutdown();
  });

  it('refuse to start without the at option, or on a data layer without AT mode', async () => {
    await expect(setUp({ at: undefined }).branches.onApplicationBootstrap()).rejects.toThrow(
      'participant wallet: AtAction debit needs the module option at: { tables: [...] }, the tables its AT actions write',
    );
    const { layer, branches } = setUp();
    layer.at = undefined;
    await expect(branches.onApplicationBootstrap()).rejects.toThrow('AtAction debit needs AT mode, which the fake layer does not have (Postgres data layers only)');
  });

  it('start nothing when the participant has no AT action', async () => {
    const { at, branches } = setUp({ at: undefined }, []);
    await branches.onApplicationBootstrap();
    expect(at.installedWith).toBeNull();
  });

  it('clean up committed branches in batches: the commits answered within the delay share one statement', async () => {
    vi.useFakeTimers();
    const { at, dispatcher, branches } = setUp({ at: { tables: ['accounts'], cleanupDelayMs: 50, cleanupBatchSize: 2 } });
    for (const gid of ['g1', 'g2', 'g3']) await dispatcher.dispatch(call(gid, 'commit'));
    expect(at.deleted).toEqual([]);
    await vi.advanceTimersByTimeAsync(50);
    await branches.drained();
    expect(at.deleted).toEqual([
      [
        { gid: 'g1', branchId: 'b1' },
        { gid: 'g2', branchId: 'b1' },
      ],
      [{ gid: 'g3', branchId: 'b1' }],
    ]);
  });

  it('sweep at start-up the committed branches a crash left, until none is left', async () => {
    const { at, branches } = setUp();
    at.leftovers = [[{ gid: 'old-1', branchId: 'b1' }], [{ gid: 'old-2', branchId: 'b2' }]];
    await branches.onApplicationBootstrap();
    expect(at.deleted).toEqual([[{ gid: 'old-1', branchId: 'b1' }], [{ gid: 'old-2', branchId: 'b2' }]]);
    await branches.onApplicationShutdown();
  });
});

describe('the at option', () => {
  const base = { name: 'wallet', coordinatorUrl: 'http://127.0.0.1:7070', publicUrl: 'http://127.0.0.1:4001' };
  it.each([
    [{ tables: [] }, 'at.tables must list the tables'],
    [{ tables: [''] }, 'at.tables must list the tables'],
    [{ tables: ['accounts'], lockWaitMs: -1 }, 'at.lockWaitMs must be a whole number'],
    [{ tables: ['accounts'], lockWaitMs: 1.5 }, 'at.lockWaitMs must be a whole number'],
    [{ tables: ['accounts'], cleanupBatchSize: 0 }, 'at.cleanupBatchSize must be a whole number, 1 or more'],
    [{ tables: ['accounts'], cleanupDelayMs: -5 }, 'at.cleanupDelayMs must be a whole number'],
    [{ tables: ['accounts'], leftoverSweepIntervalMs: 10 }, 'at.leftoverSweepIntervalMs must be at least 1000'],
  ])('refuses %j', (at, message) => {
    expect(() => checkParticipantOptions({ ...base, at })).toThrow(`participant wallet: ${message}`);
  });

  it('accepts tables with the defaults', () => {
    expect(() => checkParticipantOptions({ ...base, at: { tables: ['accounts', 'billing.ledger'] } })).not.toThrow();
  });
});
