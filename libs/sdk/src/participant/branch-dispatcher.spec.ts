import { describe, expect, it } from 'vitest';
import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import type { BusinessWork, DtxDataLayer, XaDataLayer } from '../data-layers/core/data-layer.js';
import { BranchBarrier } from './barrier.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import type { BranchContext, ParticipantExplorer, RegisteredAction } from './participant.explorer.js';
import type { ParticipantModuleOptions } from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';

/** A data layer that runs the work with a handle of its own and records what it was asked. */
class FakeDataLayer implements DtxDataLayer<{ handle: string }> {
  readonly description = 'the fake layer';
  readonly calls: PhaseCallBody[] = [];
  xa?: XaDataLayer<{ handle: string }>;

  async runPhase(call: PhaseCallBody, work: BusinessWork<{ handle: string }>): Promise<BarrierOutcome> {
    this.calls.push(call);
    return { kind: 'ok', result: (await work({ handle: 'tx-1' })) ?? null, duplicate: false, skipped: false };
  }

  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

const options: ParticipantModuleOptions = { name: 'wallet', coordinatorUrl: 'http://127.0.0.1:7070' };

function dispatcherWith(layer: FakeDataLayer, actions: RegisteredAction[]): BranchDispatcher {
  const explorer = {
    get: (name: string, mode: string) => actions.find((a) => a.name === name && a.mode === mode),
    list: () => actions,
  } as unknown as ParticipantExplorer;
  return new BranchDispatcher(explorer, new BranchBarrier(layer), new PreparedTransactions(layer), options);
}

const call: PhaseCallBody = { gid: 'g1', branchId: 'b1', mode: 'tcc', action: 'pay', phase: 'try', payload: { amount: 5 } };

describe('BranchDispatcher', () => {
  it('runs the action through the data layer, handing the layer\'s handle to the method as tx (and manager)', async () => {
    const layer = new FakeDataLayer();
    const seen: BranchContext<unknown>[] = [];
    const tryPay = (payload: Json, context: BranchContext<unknown>) => {
      seen.push(context);
      return { paid: (payload as { amount: number }).amount };
    };
    const dispatcher = dispatcherWith(layer, [{ name: 'pay', mode: 'tcc', xa: false, handlers: { try: tryPay, confirm: () => undefined, cancel: () => undefined } }]);
    expect(await dispatcher.dispatch(call)).toEqual({ kind: 'ok', result: { paid: 5 } });
    expect(layer.calls).toEqual([call]);
    expect(seen).toEqual([{ gid: 'g1', branchId: 'b1', mode: 'tcc', action: 'pay', phase: 'try', tx: { handle: 'tx-1' }, manager: { handle: 'tx-1' } }]);
  });

  it('refuses to start when an XaAction is declared on a data layer without prepared transactions', async () => {
    const layer = new FakeDataLayer();
    const dispatcher = dispatcherWith(layer, [{ name: 'debit', mode: '2pc', xa: true, handlers: { prepare: () => undefined } }]);
    await expect(dispatcher.onApplicationBootstrap()).rejects.toThrow(
      'participant wallet: XaAction debit needs prepared (XA) transactions, which the fake layer does not have',
    );
  });

  it('starts with XaActions on a layer that has them, listing what is still prepared', async () => {
    const layer = new FakeDataLayer();
    const asked: string[] = [];
    layer.xa = {
      prepare: () => Promise.reject(new Error('unused')),
      commit: () => Promise.reject(new Error('unused')),
      rollback: () => Promise.reject(new Error('unused')),
      listOwn: (participant) => {
        asked.push(participant);
        return Promise.resolve([`dtx:${participant}:0123`]);
      },
    };
    const dispatcher = dispatcherWith(layer, [{ name: 'debit', mode: '2pc', xa: true, handlers: { prepare: () => undefined } }]);
    await expect(dispatcher.onApplicationBootstrap()).resolves.toBeUndefined();
    expect(asked).toEqual(['wallet']);
  });
});
