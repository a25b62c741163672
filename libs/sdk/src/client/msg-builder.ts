import { randomUUID } from 'node:crypto';
import { ID_PATTERN, MSG_CHECK_BRANCH_ID, type JsonObject, type TransactionView } from '@nest-dtx/protocol';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { LocalTransactionBarrier } from '../participant/barrier.js';
import { DTX_MSG_CHECK_ACTION, LocalTransactionRefused } from '../participant/msg-check.js';
import { CoordinatorError } from './coordinator-error.js';
import type { BranchRequest, TransactionClient } from './transaction-client.js';

/** The action that answers a message's check-back: `{ participant, action }`, registered for mode msg. */
export interface MsgCheckTarget {
  participant: string;
  action: string;
}

export interface MsgOptions {
  /** The message's id; a fresh UUID by default. Give your own to make a retried send find the first one. */
  gid?: string;
  /** Until the check-back: how long the message may stay unsubmitted. */
  timeoutMs?: number;
  metadata?: JsonObject;
}

/**
 * The local transaction of a message committed, but the submit (the commit request) failed: no
 * answer, or an error. The message is not lost: it stays `active` (prepared) at the
 * coordinator, whose check-back at its deadline finds the local commit and delivers it. Nothing
 * needs doing but, if wanted, `client.commit(gid)` again.
 */
export class MsgSubmitError extends Error {
  constructor(
    readonly gid: string,
    override readonly cause: unknown,
  ) {
    super(
      `message ${gid}: the local transaction committed but the submit failed (${cause instanceof Error ? cause.message : String(cause)}); ` +
        "the message is safe: the coordinator's check-back at its deadline will find the commit and deliver it",
    );
    this.name = 'MsgSubmitError';
  }
}

/**
 * Builds a two-phase message (mode msg, PROTOCOL.md 3.1; dtm's msg): branches that each receive
 * `execute` once the message is submitted, at least once, until they answer 2xx.
 *
 * ```ts
 * await client.msg().add('bank-b', 'credit', { accountId, amount }).doAndSubmit(barrier, async (tx) => debit(tx));
 * ```
 *
 * - `doAndSubmit(barrier, work)`: the whole flow, for a sender that is a participant: begins the
 *   message (check target: its own `dtx-msg-check`), runs `work` in its local transaction under
 *   the barrier, and submits when that committed.
 * - `prepare(check)`: only begins the message, for a caller that runs its own local transaction
 *   and its own check action; then `client.commit(gid)` or `client.rollback(gid)`.
 * - `submit()`: a durable fan-out with no local transaction.
 */
export class MsgBuilder {
  readonly gid: string;
  private readonly branches: BranchRequest[] = [];

  constructor(
    private readonly client: TransactionClient,
    private readonly options: MsgOptions = {},
  ) {
    this.gid = options.gid ?? randomUUID();
  }

  /** Adds a branch. branchIds default to `b1`, `b2`, … in order; `check` is the check-back's and cannot be one. */
  add(participant: string, action: string, payload: JsonObject = {}, branchId?: string): this {
    const id = branchId ?? `b${this.branches.length + 1}`;
    if (id === MSG_CHECK_BRANCH_ID) throw new Error(`branchId ${MSG_CHECK_BRANCH_ID} is reserved in mode msg for the check-back`);
    if (!ID_PATTERN.test(id)) throw new Error(`branchId ${JSON.stringify(id)} is not [A-Za-z0-9_.:-]{1,128}`);
    if (this.branches.some((b) => b.branchId === id)) throw new Error(`branchId ${id} is added twice`);
    this.branches.push({ branchId: id, participant, action, payload });
    return this;
  }

  /**
   * Submits the message at once, with no local transaction: a durable fan-out (`submit: true`),
   * delivered to every branch until each answers 2xx. The coordinator requires a check target
   * on every message even though it never asks this one: by default the first branch's
   * participant's `dtx-msg-check` (every SDK participant registers it). With `wait` (default
   * false) resolves once every branch has it.
   */
  submit(options: { wait?: boolean; check?: MsgCheckTarget } = {}): Promise<TransactionView> {
    const first = this.branches[0];
    const check = options.check ?? (first ? { participant: first.participant, action: DTX_MSG_CHECK_ACTION } : undefined);
    return this.client.begin({ ...this.begin(), ...(check ? { check } : {}), submit: true, wait: options.wait ?? false });
  }

  /**
   * Begins the message `active` (prepared): nothing is delivered until `client.commit(gid)`
   * (submit). If neither comes before its deadline, the coordinator asks `check` whether the
   * caller's local transaction committed: 2xx delivers the message, 409 rolls it back.
   */
  prepare(check: MsgCheckTarget): Promise<TransactionView> {
    return this.client.begin({ ...this.begin(), check });
  }

  /**
   * dtm's DoAndSubmit: the message and the sender's local transaction commit together or not at all.
   * 1. Begins the message active, its check target `barrier.participant`'s `dtx-msg-check`.
   * 2. Runs `work` in the participant's local transaction with the barrier row the check-back
   *    reads (BranchBarrier.runLocal).
   * 3. Committed: submits it and returns the view. A BusinessFailure of `work`, or the barrier
   *    refusing the local transaction (a check-back already answered "not committed"): rolls
   *    the message back and rethrows. Any other error leaves the local commit's outcome unknown
   *    (say the connection dropped at COMMIT): the local barrier is asked, as the coordinator's
   *    check-back would ask it; not committed, the message is rolled back and the error
   *    rethrown; committed, it is submitted; the question failing too, the error is rethrown and
   *    the coordinator's check-back settles it at the deadline.
   *
   * A rollback request that fails changes nothing: the message stays active and its check-back
   * answers 409 (no local transaction committed). A submit that fails after the local commit
   * throws MsgSubmitError: the message is safe, the check-back delivers it. Sent again with the
   * same gid, an already submitted message is returned as it is, and one already rolled back is
   * refused (TX_ALREADY_DECIDED) before any local work.
   */
  async doAndSubmit<Tx>(barrier: LocalTransactionBarrier<Tx>, work: (tx: Tx) => Promise<void>, options: { wait?: boolean } = {}): Promise<TransactionView> {
    const begun = await this.prepare({ participant: barrier.participant, action: DTX_MSG_CHECK_ACTION });
    if (begun.status === 'committing' || begun.status === 'committed') return begun;
    if (begun.status !== 'active') {
      throw new CoordinatorError(409, {
        statusCode: 409,
        error: 'TX_ALREADY_DECIDED',
        message: `message ${this.gid} is already ${begun.status}: its local transaction is not run`,
      });
    }
    try {
      await barrier.runLocal(this.gid, work);
    } catch (error) {
      if (error instanceof BusinessFailure || error instanceof LocalTransactionRefused) {
        await this.rollbackQuietly();
        throw error;
      }
      let state: 'committed' | 'not_committed';
      try {
        state = await barrier.checkLocal(this.gid);
      } catch {
        // Unknown, and unknowable for now: the coordinator's check-back asks again at the deadline.
        throw error;
      }
      if (state === 'not_committed') {
        await this.rollbackQuietly();
        throw error;
      }
    }
    try {
      return await this.client.commit(this.gid, { wait: options.wait ?? false });
    } catch (error) {
      // Decided otherwise (an operator rolled it back): nothing will deliver it, say so as it is.
      if (error instanceof CoordinatorError && error.code === 'TX_ALREADY_DECIDED') throw error;
      throw new MsgSubmitError(this.gid, error);
    }
  }

  private begin() {
    return { mode: 'msg' as const, gid: this.gid, timeoutMs: this.options.timeoutMs, metadata: this.options.metadata, branches: this.branches };
  }

  /** The check-back rolls back a message whose rollback request was lost: the local transaction did not commit. */
  private async rollbackQuietly(): Promise<void> {
    await this.client.rollback(this.gid).catch(() => undefined);
  }
}
