import { Injectable } from '@nestjs/common';
import { MODE_PHASES, isTerminal, type BranchStatus } from '@nest-dtx/protocol';
import type { BranchChange, BranchRecord, EventInput, LoadedTx, TxChange } from '../../store/records.js';
import { DatabaseTime } from '../../store/database-clock.js';
import { BranchCaller } from '../branch-caller.js';
import { crashPoint } from '../crash-points.js';
import { compensableSteps, runnableSteps, type SagaStep } from '../saga-dag.js';
import { branchStatusIn, branchStatuses, callEvent, errorOf, machineOf, phase1AnswerOf } from '../machine.js';
import { transition } from '../state-machine.js';
import { TransactionWriter } from '../transaction-writer.js';
import { untilDeadlineMs, type ModeProcessor } from './mode-processor.js';

const stepsOf = (loaded: LoadedTx): SagaStep[] => loaded.branches.map((b) => ({ name: b.branchId, dependsOn: b.dependsOn }));

/** A step's status by name; a step not recorded has not run. */
const statusLookup = (loaded: LoadedTx) => {
  const statusOf = branchStatuses(loaded.branches);
  return (name: string): BranchStatus => statusOf(name) ?? 'pending';
};

/**
 * Saga: forward steps in dependency order (the listed order, or a DAG run in parallel waves),
 * each wave's outcomes durable before a step that depends on them starts. A refused step turns
 * the saga to compensation, which the engine delivers in reverse dependency order. Transient
 * failures of forward steps are retried with backoff until the deadline.
 */
@Injectable()
export class SagaProcessor implements ModeProcessor {
  readonly mode = 'saga' as const;
  readonly phases = MODE_PHASES.saga;

  constructor(
    private readonly writer: TransactionWriter,
    private readonly caller: BranchCaller,
    private readonly clock: DatabaseTime,
  ) {}

  start(loaded: LoadedTx): Promise<LoadedTx> {
    return this.runForward(loaded);
  }

  /**
   * A saga also falls due between retries of its steps: only past its deadline is it rolled
   * back, judged in the database's time (the claim's own `now()` when recovery claimed it).
   */
  expiredWhenClaimed(loaded: LoadedTx): boolean {
    return untilDeadlineMs(loaded, this.clock) <= 0;
  }

  resumeActive(loaded: LoadedTx): Promise<LoadedTx> {
    return this.runForward(loaded);
  }

  phase2Wave(loaded: LoadedTx): BranchRecord[] {
    if (loaded.tx.status !== 'rolling_back') return [];
    const names = new Set(compensableSteps(stepsOf(loaded), statusLookup(loaded)));
    return loaded.branches.filter((b) => names.has(b.branchId));
  }

  /** Runs waves of forward steps until the saga commits, turns to compensation, or must wait to retry. */
  private async runForward(loaded: LoadedTx): Promise<LoadedTx> {
    let current = loaded;
    while (current.tx.status === 'active') {
      const runnable = new Set(runnableSteps(stepsOf(current), statusLookup(current)));
      const wave = current.branches.filter((b) => runnable.has(b.branchId));
      if (wave.length === 0) return current;

      const outcomes = await this.caller.callAll(current, wave, this.phases.phase1);
      crashPoint('after_phase1_calls', current.tx.gid);
      const answers = wave.map((b, i) => ({ branchId: b.branchId, answer: phase1AnswerOf(outcomes[i]) }));
      const result = transition(machineOf(current), { type: 'steps_answered', answers });
      if (!result.ok) throw new Error(`saga step answers refused: ${result.error}`);
      const next = result.tx;
      const statusOf = branchStatusIn(next);

      const transient = outcomes.some((o) => o.kind === 'transient');
      const moved = next.status !== current.tx.status;
      const attempts = moved ? 0 : transient ? current.tx.attempts + 1 : current.tx.attempts;
      // Still active with a transient failure: retry later, but never past the deadline.
      const untilDeadline = Math.max(0, Math.ceil(this.clock.msUntil(current.tx.deadline)));
      const schedule: Pick<TxChange, 'lease' | 'nextAttemptInMs'> = isTerminal(next.status)
        ? { lease: null, nextAttemptInMs: null }
        : next.status === 'active' && transient
          ? { lease: null, nextAttemptInMs: Math.min(this.writer.retryDelayMs(attempts), untilDeadline) }
          : this.writer.ownLease();

      const branches: BranchChange[] = wave.map((b, i) => {
        const outcome = outcomes[i];
        return outcome.kind === 'ok'
          ? { branchId: b.branchId, status: statusOf(b), calls: 1, result: outcome.result, lastError: null }
          : { branchId: b.branchId, status: statusOf(b), calls: 1, lastError: errorOf(outcome) };
      });
      const events: EventInput[] = wave.map((b, i) => callEvent(b, this.phases.phase1, outcomes[i], statusOf(b)));
      if (moved) events.push({ type: 'status', from: current.tx.status, to: next.status, detail: { reason: next.reason } });

      const saved = await this.writer.write(current, { status: next.status, reason: next.reason, attempts, ...schedule, branches, events });
      if (!saved) return (await this.writer.load(current.tx.gid)) ?? current;
      current = saved;
      if (moved) crashPoint('after_decision', current.tx.gid);
      if (transient && current.tx.status === 'active') return current;
    }
    return current;
  }
}
