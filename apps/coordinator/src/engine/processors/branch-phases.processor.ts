import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import type { LoadedTx } from '../../store/records.js';
import { COMMITTING_MOVES, type ModeRules } from '../state-machine.js';
import { awaitingPhase2, phase1Wave, phase2Wave, type ActiveStep, type Wave } from '../wave.js';
import { beginBranches, namedBranches, refuseMessageFields, withBeginHistory } from './begin-parts.js';
import type { BeginRequest, ModeProcessor, NewTransactionParts } from './mode-processor.js';

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
   * It is sent once, at begin: an interactive transaction waits for its client, and an active
   * one recovery claims has met its deadline.
   */
  nextActive(loaded: LoadedTx): ActiveStep {
    if (!loaded.tx.oneShot || loaded.branches.some((b) => b.attempts > 0)) return null;
    return phase1Wave(loaded.branches, this, true);
  }

  nextDecided(loaded: LoadedTx): Wave {
    return phase2Wave(loaded, this, awaitingPhase2(loaded, this));
  }
}
