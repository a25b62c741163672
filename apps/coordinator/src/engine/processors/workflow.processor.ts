import { Injectable } from '@nestjs/common';
import type { CallOutcome } from '@nest-dtx/protocol';
import { CoordinatorConfig } from '../../config/coordinator.config.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import { UnresolvedParticipantError } from '../../participants/unresolved-participant.error.js';
import type { BranchRecord, LoadedTx, NewBranch, TxRecord } from '../../store/records.js';
import type { BranchKind } from '../branch-kind.js';
import { InvalidRequestError } from '../errors.js';
import type { KindedBranch } from '../machine.js';
import { COMMITTING_MOVES, type ModeRules } from '../state-machine.js';
import { awaitingPhase2, isWaiting, phase1Wave, phase2Wave, type ActiveStep, type Wave, type WaveCall } from '../wave.js';
import { refuseMessageFields, withBeginHistory } from './begin-parts.js';
import type { BeginRequest, ModeProcessor, NewTransactionParts, StepPlan, StepRequest } from './mode-processor.js';
import { TransactionMode } from './transaction-mode.decorator.js';

/**
 * A workflow's rules (PROTOCOL.md 3.7): its host records steps one by one while it is active,
 * each of its own kind; a step's phase-1 success makes a tcc / 2pc step prepared and a saga
 * step committed (a local step is recorded committed, as its host ran it); a failed step decides
 * nothing by itself: the host decides, and a commit is allowed only when every step is what
 * its kind's success makes it (otherwise it rolls back, branch_failed). Its commit point is the
 * write of `committing`, as tcc's; the deadline rolls it back.
 */
export const WORKFLOW_RULES: ModeRules = {
  moves: COMMITTING_MOVES,
  addsBranches: false,
  recordsSteps: true,
  afterPhase1: { tcc: 'prepared', '2pc': 'prepared', saga: 'committed', local: 'committed' },
  phase1Answers: 'held',
  clientDecides: true,
  atDeadline: 'roll_back',
};

/**
 * The branchId of a workflow's resume call (PROTOCOL.md 3.7): it names no step. A step may be
 * called `resume` too: no call of a step is in phase `resume`, so the two never share a
 * `(gid, branchId, phase)`, which is all a participant keys its calls by (5.4, 5.5).
 */
export const WORKFLOW_RESUME_BRANCH_ID = 'resume';

/**
 * workflow, a durable function of its host (PROTOCOL.md 3.7): begun active with no branch, its
 * host records each step as it runs (the engine's recordStep, through `step`), and decides with
 * 3.3. A host that went quiet (no step, no decision for WORKFLOW_RESUME_MS) is asked to run it
 * again (`resume`), and asked again while it answers. Commit confirms / commits the tcc / 2pc
 * steps at once (saga and local steps are committed already); rollback undoes the steps newest
 * first, one at a time, each only once every newer one has answered 2xx, a local step by its
 * compensation if it has one.
 */
@Injectable()
@TransactionMode('workflow')
export class WorkflowProcessor implements ModeProcessor {
  readonly rules = WORKFLOW_RULES;
  readonly phase1InBackground = false;
  readonly commitCarriesResult = true;

  constructor(
    private readonly participants: ParticipantsService,
    private readonly config: CoordinatorConfig,
  ) {}

  /** `workflow` names its host and an action of it registered with mode workflow; no branches or steps, which its host records as it runs. */
  async begin(request: BeginRequest): Promise<NewTransactionParts> {
    refuseMessageFields(request);
    for (const field of ['branches', 'steps', 'concurrent'] as const) {
      if (request[field] !== undefined) throw new InvalidRequestError(field, `${field} is not for mode workflow: its host records its steps one by one (POST /v1/transactions/{gid}/steps)`);
    }
    const { workflow } = request;
    if (!workflow) throw new InvalidRequestError('workflow', 'workflow is required for mode workflow');
    const host = await this.participants.resolve(workflow.participant, workflow.name, 'workflow', 'workflow').catch((error: unknown) => {
      throw withNameField(error);
    });
    return withBeginHistory(request, {
      branches: [],
      oneShot: false,
      status: 'active',
      branchStatus: 'pending',
      // The registered spelling, so that resumes name the host as it registered.
      workflow: { participant: host.name, name: workflow.name },
      input: request.input ?? null,
      // Resumed if its host records nothing for the resume interval (never past its deadline).
      firstLook: { afterMs: this.config.env.WORKFLOW_RESUME_MS },
    });
  }

  /** A step's kind is recorded with it. */
  kindOf(branch: KindedBranch): BranchKind {
    if (!branch.kind) throw new Error(`workflow step ${branch.branchId} has no kind`);
    return branch.kind;
  }

  /**
   * A step whose participant answered its phase 1 long-running (PROTOCOL.md 3.6) is asked again
   * first, with the same call, until it answers finally; the host's run waits for it meanwhile.
   * Otherwise the host went quiet (recovery claimed the workflow once its resume interval passed
   * with no step): ask it to run the workflow again. Its answer moves nothing: a host that
   * decided did so through 3.3 while it ran. It is asked again after the resume interval, or
   * when it said (`202` with retryAfterMs); any other answer is retried with backoff
   * (transaction-round.ts).
   */
  nextActive(loaded: LoadedTx): ActiveStep {
    const waiting = loaded.branches.filter(isWaiting);
    if (waiting.length > 0) return this.askedAgain(waiting);
    const { tx } = loaded;
    if (!tx.workflow) throw new Error(`workflow transaction ${tx.gid} has no workflow`);
    const call: WaveCall = {
      target: { branchId: WORKFLOW_RESUME_BRANCH_ID, participant: tx.workflow.participant, action: tx.workflow.name, payload: tx.input },
      branch: null,
      phase: 'resume',
      mode: 'workflow',
    };
    return {
      calls: [call],
      answered: () => [],
      idleAfter: (outcomes) => this.untilNextResumeMs(outcomes),
    };
  }

  /**
   * Commit: confirm / commit to every tcc / 2pc step at once (the others are committed already).
   * Rollback: the newest step still owed its rollback phase alone, so that a step is undone only
   * after every step recorded after it answered 2xx.
   */
  nextDecided(loaded: LoadedTx): Wave {
    const awaiting = awaitingPhase2(loaded, this);
    if (loaded.tx.status !== 'rolling_back' || awaiting.length === 0) return phase2Wave(loaded, this, awaiting);
    const newest = awaiting.reduce((a, b) => (b.seq > a.seq ? b : a));
    return phase2Wave(loaded, this, [newest]);
  }

  /** The steps named, in the phase each has now: what a participant's reported outcome (PROTOCOL.md 3.6) runs through the round as. */
  waveOf(loaded: LoadedTx, branchIds: ReadonlySet<string>): Wave {
    const branches = loaded.branches.filter((b) => branchIds.has(b.branchId));
    return loaded.tx.status === 'active' ? this.askedAgain(branches) : phase2Wave(loaded, this, branches);
  }

  /**
   * Phase 1 of steps waiting for their final answer, asked again. Their answers decide nothing
   * (the host does); once none waits, the host's next resume is a resume interval away: it was
   * waiting for them, not quiet.
   */
  private askedAgain(steps: readonly BranchRecord[]): Wave {
    return { ...phase1Wave(steps, this), idleAfter: () => this.config.env.WORKFLOW_RESUME_MS };
  }

  /**
   * A step as its host records it. A tcc / 2pc / saga step's participant must expose its action
   * in the step's kind as a mode; a local step is the host's own (its participant and action are
   * the workflow's host and name), recorded committed with its result, and its compensation, if
   * any, must be a saga action (it is called `compensate`). Every step puts off the next resume.
   */
  async step(tx: TxRecord, request: StepRequest): Promise<StepPlan> {
    if (!tx.workflow) throw new Error(`workflow transaction ${tx.gid} has no workflow`);
    const nextLookInMs = this.config.env.WORKFLOW_RESUME_MS;
    if (request.kind !== 'local') {
      const participant = await this.participants.resolve(request.participant, request.action, request.kind, '');
      const branch: NewBranch = { branchId: request.stepId, participant: participant.name, action: request.action, payload: request.payload, kind: request.kind };
      return { branch, nextLookInMs };
    }
    let compensate = request.compensate;
    if (compensate) {
      const participant = await this.participants.resolve(compensate.participant, compensate.action, 'saga', 'compensate');
      compensate = { ...compensate, participant: participant.name };
    }
    const branch: NewBranch = {
      branchId: request.stepId,
      participant: tx.workflow.participant,
      action: tx.workflow.name,
      payload: {},
      kind: 'local',
      status: 'committed',
      result: request.result,
      ...(compensate ? { compensate } : {}),
    };
    return { branch, nextLookInMs };
  }

  /** After a resume answered: when the host said (`202` with retryAfterMs), else the resume interval. */
  private untilNextResumeMs(outcomes: readonly CallOutcome[]): number {
    const [outcome] = outcomes;
    return outcome?.kind === 'ongoing' && outcome.retryAfterMs !== undefined ? outcome.retryAfterMs : this.config.env.WORKFLOW_RESUME_MS;
  }
}

/**
 * The participants' registry words the workflow's name as an action (`workflow.action`); the
 * begin names it `workflow.name`, and a 400 names the field as the client sent it.
 */
function withNameField(error: unknown): unknown {
  if (error instanceof UnresolvedParticipantError && error.field === 'workflow.action') {
    return new UnresolvedParticipantError(error.code, 'workflow.name', error.message);
  }
  return error;
}
