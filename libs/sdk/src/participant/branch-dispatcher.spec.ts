import { describe, expect, it } from 'vitest';
import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import {
  answerSlot,
  barrierDecision,
  barrierInserts,
  barrierKind,
  barrierOutcome,
  ongoingOutcome,
  slotToRead,
  type BarrierOrigin,
  type BarrierOutcome,
  type BarrierRunOptions,
  type BarrierSlot,
} from '../data-layers/core/barrier-rules.js';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { BusinessWork, DtxDataLayer, XaDataLayer } from '../data-layers/core/data-layer.js';
import { finalAnswer, isOngoingAnswer, ongoing } from '../data-layers/core/ongoing-answer.js';
import type { StoredAnswer } from '../data-layers/core/stored-answer.js';
import { AtBranches } from './at-branches.js';
import { BranchBarrier } from './barrier.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { DTX_MSG_CHECK_ACTION, LocalTransactionRefused } from './msg-check.js';
import { MSG_CHECK_ACTION, type BranchContext, type ParticipantExplorer, type RegisteredAction } from './participant.explorer.js';
import { ParticipantSchema } from './participant-schema.js';
import type { ParticipantModuleOptions } from './participant.options.js';
import { PreparedTransactions } from './prepared-transactions.js';

/** A data layer that runs the work with a handle of its own and records what it was asked. */
class FakeDataLayer implements DtxDataLayer<{ handle: string }> {
  readonly description = 'the fake layer';
  readonly calls: PhaseCallBody[] = [];
  xa?: XaDataLayer<{ handle: string }>;

  async runPhase(call: PhaseCallBody, work: BusinessWork<{ handle: string }>): Promise<BarrierOutcome> {
    this.calls.push(call);
    const answer = await work({ handle: 'tx-1' });
    if (isOngoingAnswer(answer)) return ongoingOutcome(answer);
    return { kind: 'ok', result: answer ?? null, duplicate: false, skipped: false };
  }

  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

/**
 * A data layer that keeps the barrier's rows in memory and decides by the real rules
 * (barrier-rules.ts), one call at a time: what the dispatcher's msg answers depend on.
 */
class MemoryDataLayer implements DtxDataLayer<{ handle: string }> {
  readonly description = 'the memory layer';
  readonly rows = new Map<string, { origin: BarrierOrigin; answer: StoredAnswer }>();
  /** Calls whose business work ran. */
  readonly ran: PhaseCallBody[] = [];

  async runPhase(call: PhaseCallBody, work: BusinessWork<{ handle: string }>, options?: BarrierRunOptions): Promise<BarrierOutcome> {
    const kind = barrierKind(call.phase, options);
    const key = (slot: BarrierSlot) => `${call.gid}/${call.branchId}/${slot}`;
    const written: string[] = [];
    const inserted = barrierInserts(kind).map(({ slot, origin }) => {
      if (this.rows.has(key(slot))) return false;
      this.rows.set(key(slot), { origin, answer: { kind: 'final', result: null } });
      written.push(key(slot));
      return true;
    });
    const slot = slotToRead(kind, inserted);
    const row = slot ? (this.rows.get(key(slot)) ?? null) : null;
    const decision = barrierDecision(kind, inserted, row ? { origin: row.origin, answer: row.answer.kind } : null);
    if (decision.kind !== 'run') return barrierOutcome(call, decision, row?.answer.kind === 'final' ? row.answer.result : null);
    try {
      const answer = await work({ handle: 'tx-1' });
      this.ran.push(call);
      const phase1 = this.rows.get(key('phase1'));
      if (decision.takesOverOngoingPhase1 && phase1?.origin === 'phase1' && phase1.answer.kind === 'ongoing') {
        this.rows.set(key('phase1'), { origin: 'rollback', answer: { kind: 'final', result: null } });
      }
      const own = answerSlot(kind);
      const ownRow = own ? this.rows.get(key(own)) : undefined;
      if (isOngoingAnswer(answer)) {
        if (own && ownRow) this.rows.set(key(own), { origin: ownRow.origin, answer: { kind: 'ongoing' } });
        return ongoingOutcome(answer);
      }
      const result = answer ?? null;
      if (decision.storesResult && own && ownRow) this.rows.set(key(own), { origin: ownRow.origin, answer: { kind: 'final', result } });
      return barrierOutcome(call, decision, result);
    } catch (error) {
      for (const row of written) this.rows.delete(row);
      if (error instanceof BusinessFailure) return { kind: 'failed', message: error.message, details: error.details };
      throw error;
    }
  }

  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

const options: ParticipantModuleOptions = { name: 'wallet', coordinatorUrl: 'http://127.0.0.1:7070' };

function dispatcherWith(layer: DtxDataLayer<{ handle: string }> & { xa?: XaDataLayer<{ handle: string }> }, actions: RegisteredAction[]): BranchDispatcher {
  // As the explorer lists them: the SDK's own check action next to the app's.
  const all = [MSG_CHECK_ACTION, ...actions];
  const explorer = {
    get: (name: string, mode: string) => all.find((a) => a.name === name && a.mode === mode),
    list: () => all,
  } as unknown as ParticipantExplorer;
  const schema = new ParticipantSchema(layer, options, explorer);
  return new BranchDispatcher(explorer, new BranchBarrier(layer, options), new PreparedTransactions(layer), new AtBranches(layer, options, explorer, schema), options, schema);
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
    const dispatcher = dispatcherWith(layer, [{ name: 'pay', mode: 'tcc', xa: false, at: false, handlers: { try: tryPay, confirm: () => undefined, cancel: () => undefined } }]);
    expect(await dispatcher.dispatch(call)).toEqual({ kind: 'ok', result: { paid: 5 } });
    expect(layer.calls).toEqual([call]);
    expect(seen).toEqual([
      {
        gid: 'g1',
        branchId: 'b1',
        mode: 'tcc',
        action: 'pay',
        phase: 'try',
        call: { gid: 'g1', branchId: 'b1', phase: 'try' },
        tx: { handle: 'tx-1' },
        manager: { handle: 'tx-1' },
      },
    ]);
  });

  it('refuses to start when an XaAction is declared on a data layer without prepared transactions', async () => {
    const layer = new FakeDataLayer();
    const dispatcher = dispatcherWith(layer, [{ name: 'debit', mode: '2pc', xa: true, at: false, handlers: { prepare: () => undefined } }]);
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
    const dispatcher = dispatcherWith(layer, [{ name: 'debit', mode: '2pc', xa: true, at: false, handlers: { prepare: () => undefined } }]);
    await expect(dispatcher.onApplicationBootstrap()).resolves.toBeUndefined();
    expect(asked).toEqual(['wallet']);
  });

  describe('mode msg', () => {
    const checkBack = (gid: string): PhaseCallBody => ({ gid, branchId: 'check', mode: 'msg', action: DTX_MSG_CHECK_ACTION, phase: 'check', payload: {} });
    const notCommitted = (gid: string) => ({
      kind: 'failed',
      message: `the local transaction of ${gid} did not commit, and now never will`,
      details: { reason: 'not_committed' },
    });

    it('answers a check-back before any local transaction 409 (failed), for good: the local transaction that comes later is refused and its work never runs', async () => {
      const layer = new MemoryDataLayer();
      const dispatcher = dispatcherWith(layer, []);
      const barrier = new BranchBarrier(layer, options);
      expect(await dispatcher.dispatch(checkBack('m1'))).toEqual(notCommitted('m1'));
      let ran = false;
      await expect(barrier.runLocal('m1', () => Promise.resolve(void (ran = true)))).rejects.toBeInstanceOf(LocalTransactionRefused);
      expect(ran).toBe(false);
      expect(await dispatcher.dispatch(checkBack('m1'))).toEqual(notCommitted('m1'));
      expect(await barrier.checkLocal('m1')).toBe('not_committed');
    });

    it('answers a check-back after the local transaction committed 2xx, every time', async () => {
      const layer = new MemoryDataLayer();
      const dispatcher = dispatcherWith(layer, []);
      const barrier = new BranchBarrier(layer, options);
      expect(await barrier.runLocal('m2', () => Promise.resolve())).toEqual({ duplicate: false, result: null });
      expect(await dispatcher.dispatch(checkBack('m2'))).toEqual({ kind: 'ok', result: null });
      expect(await dispatcher.dispatch(checkBack('m2'))).toEqual({ kind: 'ok', result: null });
      expect(await barrier.checkLocal('m2')).toBe('committed');
      // A retried send of the same message: committed already, the work does not run again.
      expect(await barrier.runLocal('m2', () => Promise.reject(new Error('ran twice')))).toEqual({ duplicate: true, result: null });
    });

    it('a local transaction that failed its business is no commit: its BusinessFailure comes back as thrown, and the check answers 409', async () => {
      const layer = new MemoryDataLayer();
      const dispatcher = dispatcherWith(layer, []);
      const barrier = new BranchBarrier(layer, options);
      const failure = new BusinessFailure('insufficient funds', { reason: 'insufficient_funds' });
      await expect(barrier.runLocal('m3', () => Promise.reject(failure))).rejects.toBe(failure);
      expect(await dispatcher.dispatch(checkBack('m3'))).toEqual(notCommitted('m3'));
    });

    it('runs the execute of a @MsgAction through the barrier as a phase 1: once, a redelivery answers the stored result', async () => {
      const layer = new MemoryDataLayer();
      const credited: Json[] = [];
      const credit = (payload: Json) => {
        credited.push(payload);
        return { credited: credited.length };
      };
      const dispatcher = dispatcherWith(layer, [{ name: 'credit', mode: 'msg', xa: false, at: false, handlers: { execute: credit } }]);
      const execute: PhaseCallBody = { gid: 'm4', branchId: 'b1', mode: 'msg', action: 'credit', phase: 'execute', payload: { amount: 5 } };
      expect(await dispatcher.dispatch(execute)).toEqual({ kind: 'ok', result: { credited: 1 } });
      expect(await dispatcher.dispatch(execute)).toEqual({ kind: 'ok', result: { credited: 1 } });
      expect(credited).toEqual([{ amount: 5 }]);
    });

    it('refuses any other call to the check action, a check of a @MsgAction, and a delivery under branchId check, running nothing', async () => {
      const layer = new MemoryDataLayer();
      let credits = 0;
      const dispatcher = dispatcherWith(layer, [{ name: 'credit', mode: 'msg', xa: false, at: false, handlers: { execute: () => void credits++ } }]);
      const calls: PhaseCallBody[] = [
        { ...checkBack('m5'), phase: 'execute' },
        { ...checkBack('m5'), branchId: 'b1' },
        { gid: 'm5', branchId: 'b1', mode: 'msg', action: 'credit', phase: 'check', payload: {} },
        { gid: 'm5', branchId: 'check', mode: 'msg', action: 'credit', phase: 'execute', payload: {} },
        { gid: 'm5', branchId: 'b1', mode: 'msg', action: 'credit', phase: 'try', payload: {} },
        { ...checkBack('m5'), mode: 'tcc', phase: 'try' },
      ];
      for (const call of calls) expect(await dispatcher.dispatch(call)).toMatchObject({ kind: 'invalid' });
      expect(credits).toBe(0);
      expect(layer.rows.size).toBe(0);
    });
  });

  describe('ongoing answers (PROTOCOL.md 3.6)', () => {
    /** An approval a person gives later: the try asks for it, answers ongoing while it waits, and answers from its state. */
    function approvalAction(state: { decision: 'waiting' | 'approved' | 'refused' }, seen: string[]): RegisteredAction {
      return {
        name: 'approve',
        mode: 'tcc',
        xa: false,
        at: false,
        handlers: {
          try: (_payload, context) => {
            seen.push(`try:${state.decision}`);
            if (state.decision === 'waiting') return ongoing({ retryAfterMs: 2000 });
            if (state.decision === 'refused') throw new BusinessFailure('refused by the approver', { reason: 'refused' });
            return { approvedFor: context.call };
          },
          confirm: () => void seen.push('confirm'),
          cancel: () => void seen.push('cancel'),
        },
      };
    }
    const tryCall: PhaseCallBody = { gid: 'o1', branchId: 'b1', mode: 'tcc', action: 'approve', phase: 'try', payload: {} };

    it('answers ongoing with the hint, runs the method again on the same call until it answers for good, then replays that answer', async () => {
      const layer = new MemoryDataLayer();
      const state = { decision: 'waiting' as 'waiting' | 'approved' | 'refused' };
      const seen: string[] = [];
      const dispatcher = dispatcherWith(layer, [approvalAction(state, seen)]);
      expect(await dispatcher.dispatch(tryCall)).toEqual({ kind: 'ongoing', retryAfterMs: 2000 });
      expect(await dispatcher.dispatch(tryCall)).toEqual({ kind: 'ongoing', retryAfterMs: 2000 });
      state.decision = 'approved';
      const approved = { kind: 'ok', result: { approvedFor: { gid: 'o1', branchId: 'b1', phase: 'try' } } };
      expect(await dispatcher.dispatch(tryCall)).toEqual(approved);
      expect(await dispatcher.dispatch(tryCall)).toEqual(approved);
      expect(seen).toEqual(['try:waiting', 'try:waiting', 'try:approved']);
    });

    it('a cancel after an ongoing try runs the real compensation (not a null one), and a late try is refused', async () => {
      const layer = new MemoryDataLayer();
      const seen: string[] = [];
      const dispatcher = dispatcherWith(layer, [approvalAction({ decision: 'waiting' }, seen)]);
      expect(await dispatcher.dispatch(tryCall)).toMatchObject({ kind: 'ongoing' });
      expect(await dispatcher.dispatch({ ...tryCall, phase: 'cancel' })).toEqual({ kind: 'ok', result: null });
      expect(await dispatcher.dispatch(tryCall)).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
      expect(seen).toEqual(['try:waiting', 'cancel']);
    });

    it('a phase 2 may answer ongoing too: a confirm runs again until it answers for good, then is skipped', async () => {
      const layer = new MemoryDataLayer();
      let confirms = 0;
      const dispatcher = dispatcherWith(layer, [
        { name: 'ship', mode: 'tcc', xa: false, at: false, handlers: { try: () => null, confirm: () => (++confirms < 3 ? ongoing() : { shipped: true }), cancel: () => null } },
      ]);
      const ship: PhaseCallBody = { gid: 'o2', branchId: 'b1', mode: 'tcc', action: 'ship', phase: 'try', payload: {} };
      await dispatcher.dispatch(ship);
      const confirm = { ...ship, phase: 'confirm' as const };
      expect(await dispatcher.dispatch(confirm)).toEqual({ kind: 'ongoing' });
      expect(await dispatcher.dispatch(confirm)).toEqual({ kind: 'ongoing' });
      expect(await dispatcher.dispatch(confirm)).toEqual({ kind: 'ok', result: { shipped: true } });
      expect(await dispatcher.dispatch(confirm)).toEqual({ kind: 'ok', result: null });
      expect(confirms).toBe(3);
    });

    it("refuses ongoing from a message's local transaction: it commits now or never, so nothing of it commits", async () => {
      const layer = new MemoryDataLayer();
      const barrier = new BranchBarrier(layer, options);
      // As plain JavaScript could (the type says Json | void).
      const work = () => Promise.resolve(ongoing() as unknown as Json);
      await expect(barrier.runLocal('o4', work)).rejects.toThrow("a message's local transaction commits or fails in the call: it cannot answer ongoing()");
      expect(layer.rows.size).toBe(0);
    });

    it('refuses ongoing from an XaAction as a participant bug (ONGOING_NOT_SUPPORTED, a 500), naming the call', async () => {
      const layer = new FakeDataLayer();
      // As the SQL layers' XA prepare does: its work must answer for good.
      layer.xa = {
        prepare: async (_participant, _call, work) => ({ kind: 'ok', result: finalAnswer(await work({ handle: 'xa' }), 'XaAction'), duplicate: false, skipped: false }),
        commit: () => Promise.reject(new Error('unused')),
        rollback: () => Promise.reject(new Error('unused')),
        listOwn: () => Promise.resolve([]),
      };
      const dispatcher = dispatcherWith(layer, [{ name: 'debit', mode: '2pc', xa: true, at: false, handlers: { prepare: () => ongoing() } }]);
      const prepare: PhaseCallBody = { gid: 'o3', branchId: 'b1', mode: '2pc', action: 'debit', phase: 'prepare', payload: {} };
      expect(await dispatcher.dispatch(prepare)).toEqual({
        kind: 'ongoing_not_supported',
        message: 'debit/prepare of o3/b1: an XaAction cannot answer ongoing(): its phase 1 must give a final answer within the call (a result, or a BusinessFailure); nothing it wrote was kept',
      });
    });
  });

  describe('a local step\'s compensation (@LocalStepCompensation, PROTOCOL.md 3.7)', () => {
    const compensate = (gid: string, action: string): PhaseCallBody => ({ gid, branchId: 'step-2', mode: 'saga', action, phase: 'compensate', payload: { invoice: 'INV-2' } });

    it('runs its compensate through the undo rule: once, though no execute ever came; a repeat is skipped; while ongoing it is asked again', async () => {
      const layer = new MemoryDataLayer();
      const undone: Json[] = [];
      let answer: 'waiting' | 'done' = 'done';
      const voidInvoice = (payload: Json) => {
        undone.push(payload);
        return answer === 'waiting' ? ongoing({ retryAfterMs: 50 }) : { voided: undone.length };
      };
      const dispatcher = dispatcherWith(layer, [{ name: 'voidInvoice', mode: 'saga', xa: false, at: false, localStepCompensation: true, handlers: { compensate: voidInvoice } }]);
      expect(await dispatcher.dispatch(compensate('l1', 'voidInvoice'))).toEqual({ kind: 'ok', result: { voided: 1 } });
      expect(await dispatcher.dispatch(compensate('l1', 'voidInvoice'))).toEqual({ kind: 'ok', result: null });
      expect(undone).toEqual([{ invoice: 'INV-2' }]);
      // It takes no phase-1 slot: only its own.
      expect([...layer.rows.keys()]).toEqual(['l1/step-2/rollback']);

      answer = 'waiting';
      expect(await dispatcher.dispatch(compensate('l2', 'voidInvoice'))).toEqual({ kind: 'ongoing', retryAfterMs: 50 });
      expect(await dispatcher.dispatch(compensate('l2', 'voidInvoice'))).toEqual({ kind: 'ongoing', retryAfterMs: 50 });
      answer = 'done';
      expect(await dispatcher.dispatch(compensate('l2', 'voidInvoice'))).toEqual({ kind: 'ok', result: { voided: 4 } });
      expect(await dispatcher.dispatch(compensate('l2', 'voidInvoice'))).toEqual({ kind: 'ok', result: null });
      expect(undone).toHaveLength(4);
    });

    it('a @SagaAction\'s compensate without its execute stays a null compensation (the limit the decorator lifts); an execute of the compensation is refused', async () => {
      const layer = new MemoryDataLayer();
      let unshipped = 0;
      let voided = 0;
      const dispatcher = dispatcherWith(layer, [
        { name: 'ship', mode: 'saga', xa: false, at: false, handlers: { execute: () => undefined, compensate: () => void unshipped++ } },
        { name: 'voidInvoice', mode: 'saga', xa: false, at: false, localStepCompensation: true, handlers: { compensate: () => void voided++ } },
      ]);
      expect(await dispatcher.dispatch(compensate('l3', 'ship'))).toEqual({ kind: 'ok', result: null });
      expect(unshipped).toBe(0);
      expect(await dispatcher.dispatch({ ...compensate('l3', 'voidInvoice'), phase: 'execute' })).toEqual({ kind: 'invalid', message: 'action voidInvoice has no execute method' });
      expect(voided).toBe(0);
    });
  });
});
