import { Injectable } from '@nestjs/common';
import { MODE_PHASES, MSG_CHECK_BRANCH_ID, isTerminal, type CallOutcome } from '@nest-dtx/protocol';
import type { BranchRecord, EventInput, LoadedTx, TxChange } from '../../store/records.js';
import { DatabaseTime } from '../../store/database-clock.js';
import { BranchCaller, type CallTarget } from '../branch-caller.js';
import { crashPoint } from '../crash-points.js';
import { errorOf, machineOf } from '../machine.js';
import { branchesAwaitingPhase2, transition, type CheckAnswer } from '../state-machine.js';
import { TransactionWriter } from '../transaction-writer.js';
import { untilDeadlineMs, type ModeProcessor } from './mode-processor.js';

/** What the caller's answer to a check-back means (PROTOCOL.md 3.1): 2xx committed, 409 not and never, else ask again. */
export const checkAnswerOf = (outcome: CallOutcome): CheckAnswer =>
  outcome.kind === 'ok' ? 'committed' : outcome.kind === 'failed' ? 'not_committed' : 'unknown';

/**
 * msg, a two-phase message (dtm's msg, a transactional outbox): the caller begins it (active,
 * its branches prepared), runs its own local transaction, and commits it (submit) or rolls it
 * back; `"submit": true` starts it committing. After the commit the engine delivers `execute`
 * to every branch, in parallel, until each answers 2xx. Nothing is sent before the commit, so a
 * rollback calls no one.
 *
 * A message still active at its deadline is not rolled back blindly: the caller may have
 * committed its local transaction and died before submitting. The coordinator asks the caller's
 * `check` action, and commits on 2xx, rolls back on 409, and asks again later on anything else.
 */
@Injectable()
export class MsgProcessor implements ModeProcessor {
  readonly mode = 'msg' as const;
  readonly phases = MODE_PHASES.msg;

  constructor(
    private readonly writer: TransactionWriter,
    private readonly caller: BranchCaller,
    private readonly clock: DatabaseTime,
  ) {}

  /** A submitted message starts committing: its insert was the decision, so there is nothing to run before phase 2. */
  start(loaded: LoadedTx): Promise<LoadedTx> {
    return Promise.resolve(loaded);
  }

  /** Recovery claims an active message at its deadline (and between check-backs); never before. */
  expiredWhenClaimed(): boolean {
    return false;
  }

  /** Asks the caller's service whether the local transaction committed, and writes what that decides. */
  async resumeActive(loaded: LoadedTx): Promise<LoadedTx> {
    const { tx } = loaded;
    // In the database's time, as the deadline was set and the row fell due: this machine's clock,
    // ahead or behind, would ask early or leave the message to wait a whole lease.
    const untilDeadline = untilDeadlineMs(loaded, this.clock);
    if (untilDeadline > 0) {
      // Not yet (resumed other than by a claim, which only takes it once due): due again at the deadline, not after a lease.
      return (await this.writer.write(loaded, { status: tx.status, reason: tx.reason, lease: null, nextAttemptInMs: Math.ceil(untilDeadline), branches: [], events: [] })) ?? loaded;
    }
    if (!tx.check) throw new Error(`msg transaction ${tx.gid} has no check target`);
    const target: CallTarget = { branchId: MSG_CHECK_BRANCH_ID, participant: tx.check.participant, action: tx.check.action, payload: {} };
    const [outcome] = await this.caller.callAll(loaded, [target], 'check');
    crashPoint('after_check_call', tx.gid);

    const result = transition(machineOf(loaded), { type: 'check_answered', answer: checkAnswerOf(outcome) });
    if (!result.ok) throw new Error(`check answer refused: ${result.error}`);
    const next = result.tx;
    const moved = next.status !== tx.status;
    const attempts = moved ? 0 : tx.attempts + 1;
    const needsAttention = !moved && attempts >= this.writer.attentionAfterAttempts;
    const schedule: Pick<TxChange, 'lease' | 'nextAttemptInMs'> = isTerminal(next.status)
      ? { lease: null, nextAttemptInMs: null }
      : moved
        ? this.writer.ownLease()
        : { lease: null, nextAttemptInMs: this.writer.retryDelayMs(attempts) };
    const events: EventInput[] = [
      {
        type: 'call',
        branchId: MSG_CHECK_BRANCH_ID,
        detail: {
          participant: target.participant,
          action: target.action,
          phase: 'check',
          outcome: outcome.kind,
          attempt: tx.attempts + 1,
          ...(outcome.kind === 'ok' ? {} : { error: errorOf(outcome) }),
        },
      },
    ];
    if (moved) events.push({ type: 'status', from: tx.status, to: next.status, detail: { reason: next.reason, cause: 'check_answered' } });
    if (needsAttention && !tx.needsAttention) events.push({ type: 'attention', detail: { attempts, refused: false } });

    const saved = await this.writer.write(loaded, { status: next.status, reason: next.reason, attempts, needsAttention, ...schedule, branches: [], events });
    if (!saved) return (await this.writer.load(tx.gid)) ?? loaded;
    if (moved) crashPoint('after_decision', tx.gid);
    return saved;
  }

  phase2Wave(loaded: LoadedTx): BranchRecord[] {
    const waiting = new Set(branchesAwaitingPhase2(machineOf(loaded)).map((b) => b.branchId));
    return loaded.branches.filter((b) => waiting.has(b.branchId));
  }
}
