import { Injectable } from '@nestjs/common';
import { MSG_CHECK_BRANCH_ID, type CallOutcome } from '@nest-dtx/protocol';
import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import { DatabaseTime } from '../../store/database-clock.js';
import type { LoadedTx } from '../../store/records.js';
import { InvalidRequestError } from '../errors.js';
import { COMMITTING_MOVES, type CheckAnswer, type ModeRules } from '../state-machine.js';
import { awaitingPhase2, phase2Wave, type ActiveStep, type Wave, type WaveCall } from '../wave.js';
import { beginBranches, namedBranches, withBeginHistory } from './begin-parts.js';
import { untilDeadlineMs, type BeginRequest, type ModeProcessor, type NewTransactionParts } from './mode-processor.js';
import { TransactionMode } from './transaction-mode.decorator.js';

/**
 * A message's branches are ready from begin (its phase 1 is the caller's own local
 * transaction); the caller commits (submits) or rolls back, and at the deadline the coordinator
 * asks rather than rolling back.
 */
export const MSG_RULES: ModeRules = {
  moves: COMMITTING_MOVES,
  addsBranches: false,
  afterPhase1: { msg: 'prepared' },
  phase1Answers: null,
  clientDecides: true,
  atDeadline: 'check',
};

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
@TransactionMode('msg')
export class MsgProcessor implements ModeProcessor {
  readonly rules = MSG_RULES;
  readonly phase1InBackground = false;

  constructor(
    private readonly participants: ParticipantsService,
    private readonly config: CoordinatorConfig,
    private readonly clock: DatabaseTime,
  ) {}

  /** Needs `branches` and `check` (PROTOCOL.md 3.1); submitted at once, its insert is the commit point. */
  async begin(request: BeginRequest): Promise<NewTransactionParts> {
    if (!request.branches) throw new InvalidRequestError('branches', 'branches is required for mode msg');
    const { check } = request;
    if (!check) throw new InvalidRequestError('check', 'check is required for mode msg');
    for (const [i, b] of request.branches.entries()) {
      if (b.branchId === MSG_CHECK_BRANCH_ID) {
        throw new InvalidRequestError(`branches.${i}.branchId`, `branches.${i}.branchId ${MSG_CHECK_BRANCH_ID} is reserved in mode msg for the check-back`);
      }
    }
    const branches = await beginBranches(this.participants, this.config.env.MAX_BRANCHES_PER_TRANSACTION, request, 'branches', namedBranches);
    const checked = await this.participants.resolve(check.participant, check.action, request.mode, 'check');
    // A publish target answers nothing, so it cannot tell whether a message's local transaction
    // committed: publishing the check would read as "committed" and deliver what may never have been.
    if (checked.publish) {
      throw new InvalidRequestError('check.participant', `participant ${checked.name} is a publish target: it gets no reply, so it cannot answer the check`);
    }
    const submitted = request.submit === true;
    return withBeginHistory(request, {
      branches,
      // Driven at once only when submitted at begin; otherwise it waits for the caller's commit.
      oneShot: submitted,
      status: submitted ? 'committing' : 'active',
      branchStatus: 'prepared',
      check: { participant: checked.name, action: check.action },
      // A submitted message's delivery is resumed if its driver dies; a prepared one is checked at its deadline.
      firstLook: submitted ? 'lease' : 'deadline',
    });
  }

  kindOf(): 'msg' {
    return 'msg';
  }

  /** At its deadline, the check-back: did the caller's local transaction commit? */
  nextActive(loaded: LoadedTx): ActiveStep {
    // In the database's time, as the deadline was set and the row fell due: this machine's clock,
    // ahead or behind, would ask early or leave the message to wait a whole lease.
    const untilDeadline = untilDeadlineMs(loaded, this.clock);
    // Not yet (resumed other than by a claim, which only takes it once due): due again at the deadline, not after a lease.
    if (untilDeadline > 0) return { postponedMs: untilDeadline };
    return this.checkWave(loaded);
  }

  /** `execute` to every branch not yet delivered, in parallel; on rollback nobody is owed anything (each is rolled back as it stands). */
  nextDecided(loaded: LoadedTx): Wave {
    return phase2Wave(loaded, this, awaitingPhase2(loaded, this));
  }

  /** While active, the check-back (`check`, PROTOCOL.md 3.1); once decided, `execute` of the branches named. */
  waveOf(loaded: LoadedTx, branchIds: ReadonlySet<string>): Wave {
    if (loaded.tx.status === 'active') return branchIds.has(MSG_CHECK_BRANCH_ID) ? this.checkWave(loaded) : { calls: [], answered: () => [] };
    return phase2Wave(loaded, this, loaded.branches.filter((b) => branchIds.has(b.branchId)));
  }

  /** Did the caller's local transaction commit? Asked of the caller's `check` action; no branch. */
  private checkWave({ tx }: LoadedTx): Wave {
    if (!tx.check) throw new Error(`msg transaction ${tx.gid} has no check target`);
    const call: WaveCall = {
      target: { branchId: MSG_CHECK_BRANCH_ID, participant: tx.check.participant, action: tx.check.action, payload: {} },
      branch: null,
      phase: 'check',
    };
    return { calls: [call], answered: ([outcome]) => [{ type: 'check_answered', answer: checkAnswerOf(outcome) }] };
  }
}
