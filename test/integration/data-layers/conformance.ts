/**
 * The barrier conformance suite (PROTOCOL.md 5.4): one set of cases that every data layer must
 * pass against its real database. Each adapter's test file gives a fixture: the data layer,
 * business work written through that library's own transactional handle, and a way to read
 * back what took effect.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, Mode, Phase, PhaseCallBody } from '@nest-dtx/protocol';
import {
  BranchBarrier,
  BusinessFailure,
  DTX_MSG_CHECK_ACTION,
  LocalTransactionRefused,
  OngoingNotSupportedError,
  ongoing,
  type BarrierOutcome,
  type BusinessAnswer,
  type DtxDataLayer,
} from '@nest-dtx/sdk';

export interface ConformanceFixture<Tx> {
  /** The data layer under test; its lock timeout should be short (1 s) for the lock case. */
  layer: DtxDataLayer<Tx>;
  /** Business work: records that `phase` of `gid` took effect, through the handle. */
  record(tx: Tx, gid: string, phase: string): Promise<void>;
  /**
   * Business work that refuses the branch: records its change through the handle first where
   * the store can undo it (SQL), then throws BusinessFailure('no stock', { reason: 'out_of_stock' })
   * (or refuses the way the store's work does, for Redis).
   */
  refuse(tx: Tx, gid: string): Promise<void>;
  /** Business work that records its change, then fails with a plain Error('disk on fire'). */
  crash(tx: Tx, gid: string): Promise<void>;
  /** The phases recorded for gid, in the order they took effect. */
  effects(gid: string): Promise<string[]>;
  /** How many barrier rows (or Redis fields) gid has. */
  barrierRows(gid: string): Promise<number>;
  /**
   * Holds the phase-1 slot of branch (gid, b1) in a prepared transaction of another session,
   * as a prepared 2PC branch would; `release` rolls it back. Absent where the store has no row
   * locks (Redis).
   */
  holdPhase1?(gid: string): Promise<{ release(): Promise<void> }>;
  /** Makes every barrier row of gid `ms` older (SQL stores, whose retention is a delete job). */
  age?(gid: string, ms: number): Promise<void>;
  /** How many sessions of the test database wait for a row lock right now (stores with row locks). */
  lockWaiters?(): Promise<number>;
  tearDown(): Promise<void>;
}

/** What the store has, which decides the cases that apply to it. */
export interface StoreTraits {
  /** Row locks, which a prepared transaction can hold (SQL: yes; Redis: no, a script runs alone). */
  rowLocks: boolean;
  /** Barrier rows deleted by the retention job (SQL) rather than expiring on their own (Redis). */
  retentionJob: boolean;
  /** AT mode (Postgres): the fixture's database has the AT schema (atSchemaDdl). Default false: the layer must have none. */
  at?: boolean;
}

export const call = (gid: string, phase: Phase, mode: Mode = 'tcc', branchId = 'b1'): PhaseCallBody => ({
  gid,
  branchId,
  mode,
  action: 'pay',
  phase,
  payload: {},
});

/** msg's check-back of message `gid`, as the coordinator sends it to the built-in check action. */
export const checkCall = (gid: string): PhaseCallBody => ({ gid, branchId: 'check', mode: 'msg', action: DTX_MSG_CHECK_ACTION, phase: 'check', payload: {} });

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/**
 * Calls again after an error, as the coordinator does with a transient answer: two calls that
 * lock the same rows in opposite orders may end in a deadlock (MySQL/MariaDB), which the
 * database breaks by failing one of them.
 */
async function transientRetried<T>(send: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await sleep(10 * attempt);
    }
  }
}

/** Runs the conformance cases against the fixture `setUp` makes (once for the file). */
export function describeBarrierConformance<Tx>(name: string, traits: StoreTraits, setUp: () => Promise<ConformanceFixture<Tx>>): void {
  describe(`barrier conformance: ${name}`, () => {
    let f: ConformanceFixture<Tx>;
    // A prefix per run, so that a store kept between runs (Redis) never sees an old gid.
    const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const id = (gid: string) => `${run}-${gid}`;

    const phase = (gid: string, p: Phase, mode: Mode = 'tcc'): Promise<BarrierOutcome> =>
      f.layer.runPhase(call(gid, p, mode), async (tx) => {
        await f.record(tx, gid, p);
        return { recorded: p };
      });

    /** The sender's side of a message: its local transactions, through the barrier as an app has it. */
    let sender: BranchBarrier<Tx>;
    const checkBack = (gid: string): Promise<BarrierOutcome> => f.layer.runPhase(checkCall(gid), () => Promise.resolve(null));
    const committed = { kind: 'ok', result: null, duplicate: true, skipped: true };
    const notCommitted = (gid: string) => ({
      kind: 'failed',
      message: `the local transaction of ${gid} did not commit, and now never will`,
      details: { reason: 'not_committed' },
    });

    beforeAll(async () => {
      f = await setUp();
      sender = new BranchBarrier(f.layer, { name: 'sender' });
    });

    afterAll(async () => {
      await f?.tearDown();
    });

    it('finds the SDK’s schema whole in the fixture’s database (Redis: has none to check)', async () => {
      if (traits.retentionJob) expect(await f.layer.checkSchema!({ at: traits.at ?? false })).toBeNull();
      else expect(f.layer.checkSchema).toBeUndefined();
    });

    it('runs a try once; a duplicate try answers ok with the first result and changes nothing', async () => {
      const gid = id('dup-try');
      expect(await phase(gid, 'try')).toEqual({ kind: 'ok', result: { recorded: 'try' }, duplicate: false, skipped: false });
      expect(await phase(gid, 'try')).toEqual({ kind: 'ok', result: { recorded: 'try' }, duplicate: true, skipped: true });
      expect(await f.effects(gid)).toEqual(['try']);
    });

    it('keeps any JSON result of phase 1 for its duplicates: a string, a number, an array, nothing', async () => {
      const results: Json[] = ['a "quoted" ünïcode string', 42.5, [1, { nested: true }], null];
      for (const [i, result] of results.entries()) {
        const gid = id(`result-${i}`);
        const work = async (tx: Tx) => {
          await f.record(tx, gid, 'try');
          return result;
        };
        expect(await f.layer.runPhase(call(gid, 'try'), work)).toMatchObject({ kind: 'ok', result, duplicate: false });
        expect(await f.layer.runPhase(call(gid, 'try'), work)).toEqual({ kind: 'ok', result, duplicate: true, skipped: true });
      }
    });

    it('confirms once: a duplicate confirm is skipped', async () => {
      const gid = id('dup-confirm');
      await phase(gid, 'try');
      expect(await phase(gid, 'confirm')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
      expect(await phase(gid, 'confirm')).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
      expect(await f.effects(gid)).toEqual(['try', 'confirm']);
    });

    it('cancels once: a duplicate cancel is skipped', async () => {
      const gid = id('dup-cancel');
      await phase(gid, 'try');
      expect(await phase(gid, 'cancel')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
      expect(await phase(gid, 'cancel')).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
      expect(await f.effects(gid)).toEqual(['try', 'cancel']);
    });

    it('null compensation: a cancel before its try changes nothing; the late try refuses (anti-hanging)', async () => {
      const gid = id('early-cancel');
      expect(await phase(gid, 'cancel')).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: true });
      expect(await phase(gid, 'try')).toEqual({
        kind: 'failed',
        message: `branch b1 of ${gid} was already rolled back`,
        details: { reason: 'rolled_back' },
      });
      expect(await phase(gid, 'cancel')).toMatchObject({ kind: 'ok', duplicate: true });
      expect(await phase(gid, 'try')).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
      expect(await f.effects(gid)).toEqual([]);
    });

    it('tells branches apart by case: gid A and gid a are two branches', async () => {
      const upper = id('CASE');
      const lower = id('case');
      await phase(upper, 'try');
      expect(await phase(lower, 'try')).toMatchObject({ kind: 'ok', duplicate: false });
      expect(await f.effects(upper)).toEqual(['try']);
      expect(await f.effects(lower)).toEqual(['try']);
    });

    it('a business failure rolls the change back with the barrier row: answered failed, and a retry can succeed', async () => {
      const gid = id('refused');
      expect(await f.layer.runPhase(call(gid, 'try'), (tx) => f.refuse(tx, gid))).toEqual({
        kind: 'failed',
        message: 'no stock',
        details: { reason: 'out_of_stock' },
      });
      expect(await f.effects(gid)).toEqual([]);
      expect(await f.barrierRows(gid)).toBe(0);
      expect(await phase(gid, 'try')).toMatchObject({ kind: 'ok', duplicate: false });
      expect(await f.effects(gid)).toEqual(['try']);
    });

    it('a plain error propagates (the participant answers 5xx: transient) and leaves nothing behind', async () => {
      const gid = id('crash');
      await expect(f.layer.runPhase(call(gid, 'try'), (tx) => f.crash(tx, gid))).rejects.toThrow('disk on fire');
      expect(await f.effects(gid)).toEqual([]);
      expect(await f.barrierRows(gid)).toBe(0);
    });

    it('ten concurrent identical tries take effect exactly once', async () => {
      const gid = id('concurrent-try');
      const answers = await Promise.all(Array.from({ length: 10 }, () => phase(gid, 'try')));
      expect(answers.every((a) => a.kind === 'ok')).toBe(true);
      expect(answers.filter((a) => a.kind === 'ok' && !a.duplicate)).toHaveLength(1);
      expect(await f.effects(gid)).toEqual(['try']);
    });

    it('ten concurrent identical cancels after a try undo it exactly once', async () => {
      const gid = id('concurrent-cancel');
      await phase(gid, 'try');
      const answers = await Promise.all(Array.from({ length: 10 }, () => phase(gid, 'cancel')));
      expect(answers.filter((a) => a.kind === 'ok' && !a.duplicate)).toHaveLength(1);
      expect(await f.effects(gid)).toEqual(['try', 'cancel']);
    });

    it('a try racing its cancel ends consistent every time: both applied, or neither and the try refused', async () => {
      let both = 0;
      let neither = 0;
      for (let i = 0; i < 20; i++) {
        const gid = id(`race-${i}`);
        const [tried, cancelled] = await Promise.all([phase(gid, 'try'), phase(gid, 'cancel')]);
        expect(cancelled.kind).toBe('ok');
        const applied = await f.effects(gid);
        if (tried.kind === 'ok') {
          expect([...applied].sort()).toEqual(['cancel', 'try']);
          both++;
        } else {
          expect(tried).toMatchObject({ details: { reason: 'rolled_back' } });
          expect(applied).toEqual([]);
          neither++;
        }
      }
      expect(both + neither).toBe(20);
    });

    it.each([
      ['2pc', 'prepare', 'commit', 'rollback'],
      ['saga', 'execute', null, 'compensate'],
    ] as const)('%s phases go through the same barrier', async (mode, phase1, commit, rollback) => {
      const gid = id(`mode-${mode}`);
      await phase(gid, phase1, mode);
      expect(await phase(gid, phase1, mode)).toMatchObject({ duplicate: true });
      if (commit) {
        await phase(gid, commit, mode);
        expect(await phase(gid, commit, mode)).toMatchObject({ duplicate: true });
      }
      await phase(gid, rollback, mode);
      expect(await phase(gid, rollback, mode)).toMatchObject({ duplicate: true });
      expect(await f.effects(gid)).toEqual([phase1, ...(commit ? [commit] : []), rollback]);
    });

    // Registered only where it can happen (not Redis, where a script never waits behind another).
    if (traits.rowLocks) it('a phase behind a prepared transaction that holds its row gives up after the lock timeout, and goes through once it is released', async () => {
      const gid = id('held');
      const hold = await f.holdPhase1!(gid);
      let released = false;
      try {
        const startedAt = Date.now();
        await expect(phase(gid, 'try')).rejects.toThrow(/lock/i);
        // Bounded: the lock timeout, not the database's default (Postgres: forever; MySQL: 50 s).
        expect(Date.now() - startedAt).toBeLessThan(10_000);
        expect(await f.effects(gid)).toEqual([]);
        await hold.release();
        released = true;
        expect(await phase(gid, 'try')).toMatchObject({ kind: 'ok', duplicate: false });
        expect(await f.effects(gid)).toEqual(['try']);
      } finally {
        if (!released) await hold.release();
      }
    });

    describe('ongoing answers (PROTOCOL.md 3.6): the phase stays repeatable until a final answer', () => {
      /** Where the business stands on a request it cannot answer at once (an approval by a person). */
      type Decision = 'waiting' | 'approved' | 'refused';
      /**
       * The business method of `p`, answering from its own state: while waiting it records
       * `<p>:waiting` and answers ongoing; approved, it records `<p>` and answers its result;
       * refused, it refuses (the fixture's refusal: its own change rolled back).
       */
      const decided = (gid: string, p: Phase, decision: Decision) => async (tx: Tx): Promise<BusinessAnswer> => {
        if (decision === 'refused') return f.refuse(tx, gid);
        await f.record(tx, gid, decision === 'waiting' ? `${p}:waiting` : p);
        return decision === 'waiting' ? ongoing({ retryAfterMs: 1000 }) : { [p]: 'done' };
      };
      const answer = (gid: string, p: Phase, decision: Decision, mode: Mode = 'tcc'): Promise<BarrierOutcome> =>
        f.layer.runPhase(call(gid, p, mode), decided(gid, p, decision));
      const asked = { kind: 'ongoing', retryAfterMs: 1000 };
      const rolledBack = { kind: 'failed', details: { reason: 'rolled_back' } };

      it('ongoing, then ok: every repeat runs the method again and what it wrote stays; the final result is kept, and a duplicate replays it', async () => {
        const gid = id('ongoing-ok');
        expect(await answer(gid, 'try', 'waiting')).toEqual(asked);
        expect(await answer(gid, 'try', 'waiting')).toEqual(asked);
        expect(await f.effects(gid)).toEqual(['try:waiting', 'try:waiting']);
        expect(await answer(gid, 'try', 'approved')).toEqual({ kind: 'ok', result: { try: 'done' }, duplicate: false, skipped: false });
        // The slot is complete: a duplicate does not run the method (which would record again).
        expect(await answer(gid, 'try', 'approved')).toEqual({ kind: 'ok', result: { try: 'done' }, duplicate: true, skipped: true });
        expect(await answer(gid, 'try', 'waiting')).toEqual({ kind: 'ok', result: { try: 'done' }, duplicate: true, skipped: true });
        expect(await f.effects(gid)).toEqual(['try:waiting', 'try:waiting', 'try']);
        expect(await f.barrierRows(gid)).toBe(1);
        expect(await phase(gid, 'confirm')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
        expect(await f.effects(gid)).toEqual(['try:waiting', 'try:waiting', 'try', 'confirm']);
      });

      it('ongoing, then a business refusal: answered failed, the refusing call changed nothing, the ongoing calls’ writes stay, and the cancel runs the real compensation', async () => {
        const gid = id('ongoing-refused');
        expect(await answer(gid, 'try', 'waiting')).toEqual(asked);
        expect(await answer(gid, 'try', 'refused')).toEqual({ kind: 'failed', message: 'no stock', details: { reason: 'out_of_stock' } });
        expect(await f.effects(gid)).toEqual(['try:waiting']);
        // Not a null compensation: phase 1 ran (and wrote) while it was ongoing.
        expect(await phase(gid, 'cancel')).toEqual({ kind: 'ok', result: { recorded: 'cancel' }, duplicate: false, skipped: false });
        expect(await answer(gid, 'try', 'approved')).toMatchObject(rolledBack);
        expect(await f.effects(gid)).toEqual(['try:waiting', 'cancel']);
      });

      it('ongoing, then the rollback: it runs the real compensation, and a late repeat of phase 1 is refused (anti-hanging)', async () => {
        const gid = id('ongoing-cancel');
        expect(await answer(gid, 'try', 'waiting')).toEqual(asked);
        expect(await phase(gid, 'cancel')).toEqual({ kind: 'ok', result: { recorded: 'cancel' }, duplicate: false, skipped: false });
        expect(await answer(gid, 'try', 'approved')).toMatchObject(rolledBack);
        expect(await answer(gid, 'try', 'waiting')).toMatchObject(rolledBack);
        expect(await phase(gid, 'cancel')).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
        expect(await f.effects(gid)).toEqual(['try:waiting', 'cancel']);
      });

      it('the rollback first, then phase 1: a null compensation, and phase 1 refused whatever it would have answered', async () => {
        const gid = id('cancel-then-ongoing');
        expect(await phase(gid, 'cancel')).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: true });
        expect(await answer(gid, 'try', 'waiting')).toMatchObject(rolledBack);
        expect(await f.effects(gid)).toEqual([]);
      });

      it.each([
        ['tcc', 'try', 'confirm'],
        ['tcc', 'try', 'cancel'],
        ['2pc', 'prepare', 'commit'],
        ['saga', 'execute', 'compensate'],
      ] as const)('%s %s then %s answering ongoing: it runs again until it answers for good, then duplicates are skipped', async (mode, phase1, phase2) => {
        const gid = id(`ongoing-${mode}-${phase2}`);
        expect(await answer(gid, phase1, 'approved', mode)).toMatchObject({ kind: 'ok', duplicate: false });
        expect(await answer(gid, phase2, 'waiting', mode)).toEqual(asked);
        expect(await answer(gid, phase2, 'waiting', mode)).toEqual(asked);
        expect(await answer(gid, phase2, 'approved', mode)).toEqual({ kind: 'ok', result: { [phase2]: 'done' }, duplicate: false, skipped: false });
        expect(await answer(gid, phase2, 'approved', mode)).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
        expect(await f.effects(gid)).toEqual([phase1, `${phase2}:waiting`, `${phase2}:waiting`, phase2]);
      });

      it('ten concurrent repeats of an ongoing try that is now approved take effect exactly once', async () => {
        const gid = id('ongoing-concurrent');
        expect(await answer(gid, 'try', 'waiting')).toEqual(asked);
        const answers = await Promise.all(Array.from({ length: 10 }, () => transientRetried(() => answer(gid, 'try', 'approved'))));
        expect(answers.every((a) => a.kind === 'ok')).toBe(true);
        expect(answers.filter((a) => a.kind === 'ok' && !a.duplicate)).toHaveLength(1);
        expect(await f.effects(gid)).toEqual(['try:waiting', 'try']);
      });

      it('a repeat of an ongoing try racing its cancel ends consistent every time: the try approved then compensated, or refused and only its waiting compensated', async () => {
        let approvedFirst = 0;
        let cancelledFirst = 0;
        for (let i = 0; i < 20; i++) {
          const gid = id(`ongoing-race-${i}`);
          expect(await answer(gid, 'try', 'waiting')).toEqual(asked);
          const [tried, cancelled] = await Promise.all([transientRetried(() => answer(gid, 'try', 'approved')), transientRetried(() => phase(gid, 'cancel'))]);
          expect(cancelled).toMatchObject({ kind: 'ok', skipped: false });
          const applied = await f.effects(gid);
          if (tried.kind === 'ok') {
            expect([...applied].sort()).toEqual(['cancel', 'try', 'try:waiting']);
            approvedFirst++;
          } else {
            expect(tried).toMatchObject(rolledBack);
            expect(applied).toEqual(['try:waiting', 'cancel']);
            cancelledFirst++;
          }
        }
        expect(approvedFirst + cancelledFirst).toBe(20);
      });
    });

    describe("undo: a workflow's local step compensated by a @LocalStepCompensation action (no phase 1 here, by design)", () => {
      const undo = (gid: string, work: (tx: Tx) => Promise<BusinessAnswer>): Promise<BarrierOutcome> =>
        f.layer.runPhase(call(gid, 'compensate', 'saga'), work, { kind: 'undo' });
      const recorded = (gid: string, effect: string, answer: BusinessAnswer) => async (tx: Tx): Promise<BusinessAnswer> => {
        await f.record(tx, gid, effect);
        return answer;
      };

      it('runs the method once though no execute came (not a null compensation); a repeat is skipped; it takes only its own slot', async () => {
        const gid = id('undo-once');
        expect(await undo(gid, recorded(gid, 'compensate', { voided: true }))).toEqual({ kind: 'ok', result: { voided: true }, duplicate: false, skipped: false });
        expect(await undo(gid, recorded(gid, 'compensate', { voided: true }))).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
        expect(await f.effects(gid)).toEqual(['compensate']);
        // No anti-hanging marker in the phase-1 slot: there is no phase 1 to refuse.
        expect(await f.barrierRows(gid)).toBe(1);
      });

      it('the same compensate without the undo rule is the null compensation it always was: the method does not run', async () => {
        const gid = id('undo-contrast');
        expect(await f.layer.runPhase(call(gid, 'compensate', 'saga'), recorded(gid, 'compensate', null))).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: true });
        expect(await f.effects(gid)).toEqual([]);
      });

      it('answering ongoing, it is asked again (what it wrote stays) until it answers for good; then repeats are skipped', async () => {
        const gid = id('undo-ongoing');
        const asked = { kind: 'ongoing', retryAfterMs: 1000 };
        expect(await undo(gid, recorded(gid, 'compensate:waiting', ongoing({ retryAfterMs: 1000 })))).toEqual(asked);
        expect(await undo(gid, recorded(gid, 'compensate:waiting', ongoing({ retryAfterMs: 1000 })))).toEqual(asked);
        expect(await undo(gid, recorded(gid, 'compensate', { voided: true }))).toEqual({ kind: 'ok', result: { voided: true }, duplicate: false, skipped: false });
        expect(await undo(gid, recorded(gid, 'compensate', { voided: true }))).toEqual({ kind: 'ok', result: null, duplicate: true, skipped: true });
        expect(await f.effects(gid)).toEqual(['compensate:waiting', 'compensate:waiting', 'compensate']);
        expect(await f.barrierRows(gid)).toBe(1);
      });

      it('a business refusal leaves no row: answered failed, and the next call runs it', async () => {
        const gid = id('undo-refused');
        expect(await undo(gid, (tx) => f.refuse(tx, gid))).toEqual({ kind: 'failed', message: 'no stock', details: { reason: 'out_of_stock' } });
        expect(await f.barrierRows(gid)).toBe(0);
        expect(await undo(gid, recorded(gid, 'compensate', null))).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
        expect(await f.effects(gid)).toEqual(['compensate']);
      });

      it('ten concurrent identical calls take effect exactly once', async () => {
        const gid = id('undo-concurrent');
        const answers = await Promise.all(Array.from({ length: 10 }, () => transientRetried(() => undo(gid, recorded(gid, 'compensate', null)))));
        expect(answers.every((a) => a.kind === 'ok')).toBe(true);
        expect(answers.filter((a) => a.kind === 'ok' && !a.duplicate)).toHaveLength(1);
        expect(await f.effects(gid)).toEqual(['compensate']);
      });
    });

    describe('msg: the check-back and the local transaction meet on one barrier row', () => {
      it('a check before any local transaction answers 409, for good: a later local transaction is refused and its work never runs', async () => {
        const gid = id('msg-check-first');
        expect(await checkBack(gid)).toEqual(notCommitted(gid));
        let ran = false;
        await expect(
          sender.runLocal(gid, async (tx) => {
            ran = true;
            await f.record(tx, gid, 'local');
          }),
        ).rejects.toBeInstanceOf(LocalTransactionRefused);
        expect(ran).toBe(false);
        expect(await f.effects(gid)).toEqual([]);
        expect(await checkBack(gid)).toEqual(notCommitted(gid));
      });

      it('a local transaction that committed: the check answers 2xx, and again 2xx', async () => {
        const gid = id('msg-local-first');
        expect(await sender.runLocal(gid, (tx) => f.record(tx, gid, 'local'))).toEqual({ duplicate: false, result: null });
        expect(await checkBack(gid)).toEqual(committed);
        expect(await checkBack(gid)).toEqual(committed);
        expect(await sender.checkLocal(gid)).toBe('committed');
        expect(await f.effects(gid)).toEqual(['local']);
      });

      it('two checks on nothing both answer 409', async () => {
        const gid = id('msg-nothing');
        expect(await checkBack(gid)).toEqual(notCommitted(gid));
        expect(await checkBack(gid)).toEqual(notCommitted(gid));
        expect(await sender.checkLocal(gid)).toBe('not_committed');
      });

      it('a local transaction refused by its business is no commit: the check answers 409', async () => {
        const gid = id('msg-refused');
        const failure = new BusinessFailure('insufficient funds', { reason: 'insufficient_funds' });
        await expect(
          sender.runLocal(gid, async (tx) => {
            await f.record(tx, gid, 'local');
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await checkBack(gid)).toEqual(notCommitted(gid));
        expect(await f.effects(gid)).toEqual([]);
      });

      if (traits.rowLocks) {
        /**
         * Starts the local transaction of `gid` and holds it open (its barrier row written, not
         * committed), sends the check once it is open, and waits until the check blocks on the row.
         */
        const checkWhileOpen = async (gid: string, end: (tx: Tx) => Promise<void>) => {
          const open = deferred();
          const finish = deferred();
          const local = sender.runLocal(gid, async (tx) => {
            await f.record(tx, gid, 'local');
            open.resolve();
            await finish.promise;
            await end(tx);
          });
          // Seen settled only if the local transaction failed before holding the row.
          await Promise.race([open.promise, local]);
          let answered = false;
          const check = checkBack(gid).finally(() => (answered = true));
          // Awaited by the case; this only keeps a case that failed early from leaving it unhandled.
          check.catch(() => undefined);
          local.catch(() => undefined);
          try {
            for (let polls = 0; (await f.lockWaiters!()) === 0; polls++) {
              if (polls > 200) throw new Error('the check never waited for the open local transaction');
              await sleep(2);
            }
            expect(answered).toBe(false);
          } finally {
            // Never left open, whatever happened: it holds rows the later cases need.
            finish.resolve();
          }
          return { local, check };
        };

        it('a check that arrives while the local transaction is open waits on its row, and answers 2xx once it commits', async () => {
          const gid = id('msg-open-commit');
          const { local, check } = await checkWhileOpen(gid, () => Promise.resolve());
          expect(await local).toEqual({ duplicate: false, result: null });
          expect(await check).toEqual(committed);
          expect(await f.effects(gid)).toEqual(['local']);
        });

        it('a check that arrives while the local transaction is open answers 409 once it rolls back, and the gid stays closed', async () => {
          const gid = id('msg-open-rollback');
          const failure = new BusinessFailure('insufficient funds', { reason: 'insufficient_funds' });
          const { local, check } = await checkWhileOpen(gid, () => Promise.reject(failure));
          await expect(local).rejects.toBe(failure);
          expect(await check).toEqual(notCommitted(gid));
          await expect(sender.runLocal(gid, (tx) => f.record(tx, gid, 'local'))).rejects.toBeInstanceOf(LocalTransactionRefused);
          expect(await f.effects(gid)).toEqual([]);
        });
      } else {
        it('a check that arrives while the local work is running takes the slot first: 409, and the local transaction is refused with nothing written', async () => {
          const gid = id('msg-open-race');
          const open = deferred();
          const finish = deferred();
          const local = sender.runLocal(gid, async (tx) => {
            await f.record(tx, gid, 'local');
            open.resolve();
            await finish.promise;
          });
          await open.promise;
          expect(await checkBack(gid)).toEqual(notCommitted(gid));
          finish.resolve();
          await expect(local).rejects.toBeInstanceOf(LocalTransactionRefused);
          expect(await f.effects(gid)).toEqual([]);
          expect(await checkBack(gid)).toEqual(notCommitted(gid));
        });
      }
    });

    it('retention deletes nothing that is younger than the retention', async () => {
      const gid = id('young');
      await phase(gid, 'try');
      expect(await f.layer.deleteExpiredBarrierRows(60 * 60 * 1000, 100)).toBe(0);
      expect(await phase(gid, 'try')).toMatchObject({ duplicate: true });
    });

    if (traits.at) {
      it('AT: the triggers capture what the library wrote; rollback undoes it, commit keeps it and its undo and lock rows go', async () => {
        const at = f.layer.at;
        expect(at).toBeDefined();
        await at!.install(['ledger'], { installTriggers: true });
        const prepare = (gid: string) =>
          at!.prepare(call(gid, 'prepare', '2pc'), async (tx) => {
            await f.record(tx, gid, 'prepare');
            await f.record(tx, gid, 'prepare-again');
            return { recorded: 'prepare' };
          }, { lockWaitMs: 200 });
        const undone = id('at-undone');
        expect(await prepare(undone)).toMatchObject({ kind: 'ok', result: { recorded: 'prepare' }, locks: { count: 2 } });
        expect(await f.effects(undone)).toEqual(['prepare', 'prepare-again']);
        expect(await at!.rollback(call(undone, 'rollback', '2pc'))).toMatchObject({ kind: 'ok', skipped: false });
        expect(await f.effects(undone)).toEqual([]);

        // AT's phase 1 takes its undo log and locks in the one call: ongoing is refused, nothing kept.
        const waiting = id('at-ongoing');
        await expect(
          at!.prepare(call(waiting, 'prepare', '2pc'), async (tx) => {
            await f.record(tx, waiting, 'prepare');
            return ongoing();
          }, { lockWaitMs: 200 }),
        ).rejects.toBeInstanceOf(OngoingNotSupportedError);
        expect(await f.effects(waiting)).toEqual([]);
        expect(await f.barrierRows(waiting)).toBe(0);

        const kept = id('at-kept');
        await prepare(kept);
        expect(await at!.commit(call(kept, 'commit', '2pc'))).toMatchObject({ kind: 'ok' });
        expect(await at!.deleteCommitted([{ gid: kept, branchId: 'b1' }])).toEqual({ undo: 2, locks: 2 });
        expect(await f.effects(kept)).toEqual(['prepare', 'prepare-again']);
      });
    } else {
      it('has no AT mode (a participant with AtAction methods refuses to start on it)', () => {
        expect(f.layer.at).toBeUndefined();
      });
    }

    if (traits.retentionJob) it('retention deletes a branch once all its rows are older than the retention, and keeps a branch with a young row', async () => {
      const old = id('old');
      const mixed = id('mixed');
      await phase(old, 'try');
      await phase(old, 'confirm');
      await phase(mixed, 'try');
      await f.age!(old, 2 * 60 * 60 * 1000);
      await f.age!(mixed, 2 * 60 * 60 * 1000);
      await phase(mixed, 'cancel');
      let removed = 0;
      for (let batch = 1; batch > 0; removed += batch) batch = await f.layer.deleteExpiredBarrierRows(60 * 60 * 1000, 1);
      expect(removed).toBe(2);
      expect(await f.barrierRows(old)).toBe(0);
      expect(await f.barrierRows(mixed)).toBe(2);
    });
  });
}
