import { describe, expect, it } from 'vitest';
import type { GlobalStatus, Json, TransactionView } from '@nest-dtx/protocol';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { LocalCommitState, LocalTransactionBarrier, LocalTransactionOutcome } from '../participant/barrier.js';
import { LocalTransactionRefused } from '../participant/msg-check.js';
import { CoordinatorError } from './coordinator-error.js';
import { MsgSubmitError } from './msg-builder.js';
import { TransactionClient, type BeginRequest } from './transaction-client.js';

const view = (gid: string, status: GlobalStatus): TransactionView =>
  ({ gid, mode: 'msg', status, reason: null, branches: [] }) as unknown as TransactionView;

/**
 * A client whose requests are recorded and answered here instead of by a coordinator: `answer`
 * per request kind, a view or an error to throw.
 */
class RecordingClient extends TransactionClient {
  readonly requests: { kind: 'begin' | 'commit' | 'rollback'; body: unknown }[] = [];
  beginStatus: GlobalStatus = 'active';
  commitError: Error | null = null;
  rollbackError: Error | null = null;

  constructor() {
    super({ coordinatorUrl: 'http://127.0.0.1:1' });
  }

  override begin(request: BeginRequest): Promise<TransactionView> {
    this.requests.push({ kind: 'begin', body: request });
    return Promise.resolve(view(request.gid ?? 'none', request.submit ? 'committing' : this.beginStatus));
  }

  override commit(gid: string, options: { wait?: boolean } = {}): Promise<TransactionView> {
    this.requests.push({ kind: 'commit', body: { gid, ...options } });
    return this.commitError ? Promise.reject(this.commitError) : Promise.resolve(view(gid, 'committing'));
  }

  override rollback(gid: string, options: { wait?: boolean } = {}): Promise<TransactionView> {
    this.requests.push({ kind: 'rollback', body: { gid, ...options } });
    return this.rollbackError ? Promise.reject(this.rollbackError) : Promise.resolve(view(gid, 'rolled_back'));
  }

  kinds(): string[] {
    return this.requests.map((r) => r.kind);
  }
}

/** A barrier whose local transaction and check answer as told, recording what it was asked. */
class ScriptedBarrier implements LocalTransactionBarrier<{ handle: string }> {
  readonly participant = 'bank-a';
  readonly asked: string[] = [];
  local: () => Promise<void> = () => Promise.resolve();
  check: () => Promise<LocalCommitState> = () => Promise.resolve('committed');

  async runLocal(gid: string, work: (tx: { handle: string }) => Promise<Json | void>): Promise<LocalTransactionOutcome> {
    this.asked.push(`runLocal ${gid}`);
    await work({ handle: 'tx' });
    await this.local();
    return { duplicate: false, result: null };
  }

  checkLocal(gid: string): Promise<LocalCommitState> {
    this.asked.push(`checkLocal ${gid}`);
    return this.check();
  }
}

const debit = () => Promise.resolve();

describe('MsgBuilder', () => {
  it('names branches b1, b2, … and refuses the reserved branchId check and a branchId given twice', () => {
    const builder = new RecordingClient().msg({ gid: 'm1' }).add('bank-b', 'credit', { amount: 1 }).add('bank-c', 'credit');
    expect(() => builder.add('bank-b', 'credit', {}, 'check')).toThrow('branchId check is reserved');
    expect(() => builder.add('bank-b', 'credit', {}, 'b2')).toThrow('branchId b2 is added twice');
  });

  it('submit: begins the message with submit: true, the first participant\'s check action as the check target it requires', async () => {
    const client = new RecordingClient();
    await client.msg({ gid: 'm1', timeoutMs: 1500 }).add('bank-b', 'credit', { amount: 1 }).add('bank-c', 'credit').submit();
    expect(client.requests).toEqual([
      {
        kind: 'begin',
        body: {
          mode: 'msg',
          gid: 'm1',
          timeoutMs: 1500,
          metadata: undefined,
          branches: [
            { branchId: 'b1', participant: 'bank-b', action: 'credit', payload: { amount: 1 } },
            { branchId: 'b2', participant: 'bank-c', action: 'credit', payload: {} },
          ],
          check: { participant: 'bank-b', action: 'dtx-msg-check' },
          submit: true,
          wait: false,
        },
      },
    ]);
  });

  it('prepare: begins the message active with the given check target, and nothing else', async () => {
    const client = new RecordingClient();
    const begun = await client.msg({ gid: 'm2' }).add('bank-b', 'credit').prepare({ participant: 'orders', action: 'order-committed' });
    expect(begun.status).toBe('active');
    expect(client.requests).toEqual([
      { kind: 'begin', body: expect.objectContaining({ mode: 'msg', gid: 'm2', check: { participant: 'orders', action: 'order-committed' } }) },
    ]);
    expect(client.requests[0].body).not.toHaveProperty('submit');
  });

  it('doAndSubmit: begins with the barrier\'s own check action, runs the local transaction, then submits', async () => {
    const client = new RecordingClient();
    const barrier = new ScriptedBarrier();
    const seen: { handle: string }[] = [];
    const done = await client.msg({ gid: 'm3' }).add('bank-b', 'credit').doAndSubmit(barrier, (tx) => Promise.resolve(void seen.push(tx)));
    expect(done.status).toBe('committing');
    expect(client.requests[0].body).toMatchObject({ mode: 'msg', gid: 'm3', check: { participant: 'bank-a', action: 'dtx-msg-check' } });
    expect(client.requests.slice(1)).toEqual([{ kind: 'commit', body: { gid: 'm3', wait: false } }]);
    expect(barrier.asked).toEqual(['runLocal m3']);
    expect(seen).toEqual([{ handle: 'tx' }]);
  });

  it.each([
    ['a BusinessFailure of the work', new BusinessFailure('insufficient funds', { reason: 'insufficient_funds' })],
    ['the barrier refusing the local transaction', new LocalTransactionRefused('m4', 'refused', { reason: 'rolled_back' })],
  ])('doAndSubmit: %s rolls the message back and is rethrown, without asking the barrier', async (_what, error) => {
    const client = new RecordingClient();
    const barrier = new ScriptedBarrier();
    barrier.local = () => Promise.reject(error);
    await expect(client.msg({ gid: 'm4' }).add('bank-b', 'credit').doAndSubmit(barrier, debit)).rejects.toBe(error);
    expect(client.kinds()).toEqual(['begin', 'rollback']);
    expect(barrier.asked).toEqual(['runLocal m4']);
  });

  it('doAndSubmit: an error that leaves the commit unknown asks the local barrier; not committed, it rolls back and rethrows', async () => {
    const client = new RecordingClient();
    const barrier = new ScriptedBarrier();
    const lost = new Error('Connection terminated unexpectedly');
    barrier.local = () => Promise.reject(lost);
    barrier.check = () => Promise.resolve('not_committed');
    await expect(client.msg({ gid: 'm5' }).add('bank-b', 'credit').doAndSubmit(barrier, debit)).rejects.toBe(lost);
    expect(client.kinds()).toEqual(['begin', 'rollback']);
    expect(barrier.asked).toEqual(['runLocal m5', 'checkLocal m5']);
  });

  it('doAndSubmit: an error after which the barrier says committed submits the message after all', async () => {
    const client = new RecordingClient();
    const barrier = new ScriptedBarrier();
    barrier.local = () => Promise.reject(new Error('Connection terminated unexpectedly'));
    const done = await client.msg({ gid: 'm6' }).add('bank-b', 'credit').doAndSubmit(barrier, debit, { wait: true });
    expect(done.status).toBe('committing');
    expect(client.requests.slice(1)).toEqual([{ kind: 'commit', body: { gid: 'm6', wait: true } }]);
  });

  it('doAndSubmit: when the barrier cannot be asked either, it rethrows and leaves the message to the check-back (no rollback, no submit)', async () => {
    const client = new RecordingClient();
    const barrier = new ScriptedBarrier();
    const lost = new Error('Connection terminated unexpectedly');
    barrier.local = () => Promise.reject(lost);
    barrier.check = () => Promise.reject(new Error('database down'));
    await expect(client.msg({ gid: 'm7' }).add('bank-b', 'credit').doAndSubmit(barrier, debit)).rejects.toBe(lost);
    expect(client.kinds()).toEqual(['begin']);
  });

  it('doAndSubmit: a lost rollback does not hide the business failure', async () => {
    const client = new RecordingClient();
    client.rollbackError = new CoordinatorError(0, null, 'coordinator unreachable');
    const barrier = new ScriptedBarrier();
    const failure = new BusinessFailure('insufficient funds');
    barrier.local = () => Promise.reject(failure);
    await expect(client.msg({ gid: 'm8' }).add('bank-b', 'credit').doAndSubmit(barrier, debit)).rejects.toBe(failure);
  });

  it('doAndSubmit: a submit that fails after the local commit is a MsgSubmitError that says the message is safe', async () => {
    const client = new RecordingClient();
    const unreachable = new CoordinatorError(0, null, 'coordinator unreachable');
    client.commitError = unreachable;
    const attempt = client.msg({ gid: 'm9' }).add('bank-b', 'credit').doAndSubmit(new ScriptedBarrier(), debit);
    await expect(attempt).rejects.toBeInstanceOf(MsgSubmitError);
    await expect(attempt).rejects.toMatchObject({ gid: 'm9', cause: unreachable, message: expect.stringContaining('check-back') });
  });

  it('doAndSubmit: a submit refused because the message was decided otherwise is thrown as it came', async () => {
    const client = new RecordingClient();
    const decided = new CoordinatorError(409, { statusCode: 409, error: 'TX_ALREADY_DECIDED', message: 'rolled back' });
    client.commitError = decided;
    await expect(client.msg({ gid: 'm10' }).add('bank-b', 'credit').doAndSubmit(new ScriptedBarrier(), debit)).rejects.toBe(decided);
  });

  it('doAndSubmit again with the gid of a submitted message returns it; of a rolled-back one refuses, and neither runs the work', async () => {
    const client = new RecordingClient();
    const barrier = new ScriptedBarrier();
    client.beginStatus = 'committed';
    expect((await client.msg({ gid: 'm11' }).add('bank-b', 'credit').doAndSubmit(barrier, debit)).status).toBe('committed');
    client.beginStatus = 'rolled_back';
    await expect(client.msg({ gid: 'm12' }).add('bank-b', 'credit').doAndSubmit(barrier, debit)).rejects.toMatchObject({ code: 'TX_ALREADY_DECIDED' });
    expect(barrier.asked).toEqual([]);
    expect(client.kinds()).toEqual(['begin', 'begin']);
  });
});
