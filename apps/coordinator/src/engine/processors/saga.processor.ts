import { Injectable } from '@nestjs/common';
import type { BranchStatus } from '@nest-dtx/protocol';
import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import type { BranchRecord, LoadedTx, NewBranch } from '../../store/records.js';
import { InvalidRequestError } from '../errors.js';
import { branchStatuses, phase1AnswerOf } from '../machine.js';
import { compensableSteps, describeDagProblem, effectiveDependencies, findDagProblem, runnableSteps, type SagaStep } from '../saga-dag.js';
import { COMMITTING_MOVES, type ModeRules } from '../state-machine.js';
import { answersOf, awaitingPhase2, branchCalls, phase2Wave, type ActiveStep, type Wave } from '../wave.js';
import { beginBranches, refuseMessageFields, withBeginHistory } from './begin-parts.js';
import type { BeginRequest, ModeProcessor, NewTransactionParts } from './mode-processor.js';
import { TransactionMode } from './transaction-mode.decorator.js';

/**
 * A saga's forward steps are already committed, so it commits straight from active (its commit
 * point is the write of `committed` after the last step), a refused step rolls it back at once,
 * and only the steps decide: the client may neither commit nor roll back.
 */
export const SAGA_RULES: ModeRules = {
  moves: { ...COMMITTING_MOVES, active: ['committed', 'rolling_back'], committing: [] },
  addsBranches: false,
  afterPhase1: { saga: 'committed' },
  phase1Answers: 'deciding',
  clientDecides: false,
  atDeadline: 'roll_back',
};

const stepsOf = (loaded: LoadedTx): SagaStep[] => loaded.branches.map((b) => ({ name: b.branchId, dependsOn: b.dependsOn }));

/** A step's status by name; a step not recorded has not run. */
const statusLookup = (loaded: LoadedTx) => {
  const statusOf = branchStatuses(loaded.branches);
  return (name: string): BranchStatus => statusOf(name) ?? 'pending';
};

/**
 * Saga: forward steps in dependency order (the listed order, or a DAG run in parallel waves),
 * each wave's outcomes durable before a step that depends on them starts. A refused step turns
 * the saga to compensation, in reverse dependency order. Transient failures of forward steps
 * are retried with backoff until the deadline.
 */
@Injectable()
@TransactionMode('saga')
export class SagaProcessor implements ModeProcessor {
  readonly rules = SAGA_RULES;
  readonly phase1InBackground = true;

  constructor(
    private readonly participants: ParticipantsService,
    private readonly config: CoordinatorConfig,
  ) {}

  async begin(request: BeginRequest): Promise<NewTransactionParts> {
    refuseMessageFields(request);
    const branches = await beginBranches(this.participants, this.config.env.MAX_BRANCHES_PER_TRANSACTION, request, 'steps', sagaSteps);
    // Resumed where it was if the instance running its steps dies: looked at again after that instance's lease.
    return withBeginHistory(request, { branches, oneShot: true, status: 'active', branchStatus: 'pending', firstLook: 'lease' });
  }

  kindOf(): 'saga' {
    return 'saga';
  }

  /**
   * The steps whose dependencies have all committed, at once: a step still waiting for its final
   * answer (it answered ongoing, PROTOCOL.md 3.6) among them, asked again with the same call.
   */
  nextActive(loaded: LoadedTx): ActiveStep {
    const runnable = new Set(runnableSteps(stepsOf(loaded), statusLookup(loaded)));
    const wave = loaded.branches.filter((b) => runnable.has(b.branchId));
    if (wave.length === 0) return null;
    return this.stepsWave(wave);
  }

  /** Compensation in reverse dependency order: a step only after every step that depended on it. */
  nextDecided(loaded: LoadedTx): Wave {
    if (loaded.tx.status !== 'rolling_back') return phase2Wave(loaded, this, awaitingPhase2(loaded, this));
    const names = new Set(compensableSteps(stepsOf(loaded), statusLookup(loaded)));
    return phase2Wave(loaded, this, loaded.branches.filter((b) => names.has(b.branchId)));
  }

  waveOf(loaded: LoadedTx, branchIds: ReadonlySet<string>): Wave {
    const branches = loaded.branches.filter((b) => branchIds.has(b.branchId));
    return loaded.tx.status === 'active' ? this.stepsWave(branches) : phase2Wave(loaded, this, branches);
  }

  private stepsWave(steps: readonly BranchRecord[]): Wave {
    const calls = branchCalls(steps, this, 'active');
    return { calls, answered: (outcomes) => [{ type: 'steps_answered', answers: answersOf(calls, outcomes, phase1AnswerOf) }] };
  }
}

/** Saga steps become branches named after the step, with their effective dependencies. */
function sagaSteps(request: BeginRequest): NewBranch[] {
  if (request.branches) throw new InvalidRequestError('branches', 'mode saga takes steps, not branches');
  const { steps } = request;
  if (!steps) throw new InvalidRequestError('steps', 'steps is required for mode saga');
  const problem = findDagProblem(steps.map((s) => ({ name: s.name, dependsOn: s.dependsOn ?? [] })));
  if (problem) throw new InvalidRequestError('steps', describeDagProblem(problem));
  const effective = effectiveDependencies(steps, request.concurrent ?? false);
  return steps.map((step, i) => ({
    branchId: step.name,
    participant: step.participant,
    action: step.action,
    payload: step.payload ?? {},
    dependsOn: [...effective[i].dependsOn],
  }));
}
