import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import { DatabaseTime } from '../../store/database-clock.js';
import type { BranchRecord, LoadedTx } from '../../store/records.js';
import { phase1AnswerOf } from '../machine.js';
import { COMMITTING_MOVES, type MachineEvent, type ModeRules } from '../state-machine.js';
import { answersOf, awaitingPhase2, branchCalls, isWaiting, phase2Wave, type ActiveStep, type Wave } from '../wave.js';
import { beginBranches, namedBranches, refuseMessageFields, withBeginHistory } from './begin-parts.js';
import { untilDeadlineMs, type BeginRequest, type ModeProcessor, type NewTransactionParts } from './mode-processor.js';

/** The rules of tcc and 2pc: interactive or one-shot, prepared branches until the decision, the client decides. */
export const branchPhasesRules = (kind: 'tcc' | '2pc'): ModeRules => ({
  moves: COMMITTING_MOVES,
  addsBranches: true,
  afterPhase1: { [kind]: 'prepared' },
  phase1Answers: 'held',
  clientDecides: true,
  atDeadline: 'roll_back',
});

/**
 * TCC and 2PC share their shape: phase 1 on every branch in parallel (one-shot) or one branch
 * at a time as the client adds them (interactive), a decision, phase 2 on every branch in
 * parallel. Only the phase names differ, and they follow from the branches' kind.
 */
export abstract class BranchPhasesProcessor implements ModeProcessor {
  abstract readonly kind: 'tcc' | '2pc';
  abstract readonly rules: ModeRules;
  readonly phase1InBackground = false;

  constructor(
    protected readonly participants: ParticipantsService,
    protected readonly config: CoordinatorConfig,
    protected readonly clock: DatabaseTime,
  ) {}

  /** Without `branches` interactive (branches are added later), with them one-shot. */
  async begin(request: BeginRequest): Promise<NewTransactionParts> {
    refuseMessageFields(request);
    const branches = await beginBranches(this.participants, this.config.env.MAX_BRANCHES_PER_TRANSACTION, request, 'branches', namedBranches);
    // Rolled back at the deadline if the instance driving a one-shot dies: phase 1 is never sent twice.
    return withBeginHistory(request, { branches, oneShot: branches.length > 0, status: 'active', branchStatus: 'pending', firstLook: 'deadline' });
  }

  kindOf(): 'tcc' | '2pc' {
    return this.kind;
  }

  /**
   * A one-shot's phase 1, on every branch at once, decided with its answers (phase1_finished).
   * It is sent once, at begin; after that only the branches still waiting for their final answer
   * (they answered ongoing, PROTOCOL.md 3.6) are asked again, and the decision waits for them. An
   * interactive transaction waits for its client, its branches still waiting asked again
   * likewise; with none, it is due at its deadline. An active one recovery claimed past its
   * deadline has met it before this is asked.
   */
  nextActive(loaded: LoadedTx): ActiveStep {
    const { oneShot } = loaded.tx;
    if (oneShot && !loaded.branches.some((b) => b.attempts > 0)) return this.phase1Wave(loaded, loaded.branches);
    const waiting = loaded.branches.filter(isWaiting);
    if (waiting.length > 0) return this.phase1Wave(loaded, waiting);
    return oneShot ? null : { postponedMs: Math.max(0, untilDeadlineMs(loaded, this.clock)) };
  }

  nextDecided(loaded: LoadedTx): Wave {
    return phase2Wave(loaded, this, awaitingPhase2(loaded, this));
  }

  waveOf(loaded: LoadedTx, branchIds: ReadonlySet<string>): Wave {
    const branches = loaded.branches.filter((b) => branchIds.has(b.branchId));
    return loaded.tx.status === 'active' ? this.phase1Wave(loaded, branches) : phase2Wave(loaded, this, branches);
  }

  /** Phase 1 of `branches`; a one-shot's answers decide, unless a branch still waits (an interactive one's wait for the client). */
  private phase1Wave(loaded: LoadedTx, branches: readonly BranchRecord[]): Wave {
    const calls = branchCalls(branches, this, 'active');
    const finished: MachineEvent[] = loaded.tx.oneShot ? [{ type: 'phase1_finished' }] : [];
    return {
      calls,
      answered: (outcomes) => [{ type: 'phase1_answered', answers: answersOf(calls, outcomes, phase1AnswerOf) }, ...finished],
    };
  }
}
