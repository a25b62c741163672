import { Injectable, Logger } from '@nestjs/common';
import { ErrorCode, isTerminal, type CallOutcome } from '@nest-dtx/protocol';
import type { Mode, TransactionEventView } from '@nest-dtx/protocol';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { isStoreUnavailable } from '../common/store-unavailable.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { DependencyOutages } from '../logging/dependency-outages.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { ParticipantsService } from '../participants/participants.service.js';
import type { BranchRecord, LoadedTx, NewBranch, NewTransaction, TxChange, TxRecord } from '../store/records.js';
import type { MadeDue } from '../store/records.js';
import { BranchCaller, LeaseLostError, wasNotCalled } from './branch-caller.js';
import { crashPoint } from './crash-points.js';
import { TooManyBranchesError, TransactionNotFoundError, TransactionRefusedError } from './errors.js';
import { branchStatusIn, callEvent, errorOf, lockedRowsOf, machineOf, phase1AnswerOf, phase2AnswerOf } from './machine.js';
import { ModeProcessors } from './processors/mode-processors.js';
import { transition, type MachineEvent, type MachineTx } from './state-machine.js';
import { TransactionWriter } from './transaction-writer.js';

/** What an operator's retry did (TransactionEngine.retryNow). */
export type RetryOutcome = MadeDue['outcome'];

type DecisionEvent = Extract<MachineEvent, { type: 'commit_requested' | 'rollback_requested' | 'deadline_passed' }>;

/** A client's or an operator's decision. */
export type RequestedDecision = Extract<DecisionEvent, { type: 'commit_requested' | 'rollback_requested' }>;

export interface Created {
  /** False when the gid already named a transaction: `loaded` is that one, untouched. */
  created: boolean;
  loaded: LoadedTx;
}

export interface Decided {
  loaded: LoadedTx;
  /** A commit was asked of a transaction with a failed or pending branch: it was rolled back instead. */
  cannotCommit: boolean;
}

/**
 * Who may use a transaction: the digest of the client key it must have been begun with, or
 * null for anyone (an admin key, no keys configured, or OWNER_SCOPED_KEYS off).
 */
export type TxScope = Buffer | null;

/** A transaction begun without a recorded key (no keys then, or before keys were recorded) is anyone's. */
const visibleTo = (tx: TxRecord, scope: TxScope): boolean => scope === null || tx.ownerKeyDigest === null || scope.equals(tx.ownerKeyDigest);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How often a decision retries its compare-and-set when other writers keep moving the transaction. */
const DECIDE_ATTEMPTS = 10;

/**
 * The only conductor of transactions and, through its writer, the only writer of the log:
 * creates them, adds branches, decides, delivers phase 2 until every branch has answered, waits
 * for the end, and resumes whatever recovery claims. Each mode plugs in as a processor.
 * Refusals are TransactionRefusedError / TransactionNotFoundError; the API layer words them.
 */
@Injectable()
export class TransactionEngine {
  private readonly logger = new Logger(TransactionEngine.name);

  constructor(
    private readonly writer: TransactionWriter,
    private readonly caller: BranchCaller,
    private readonly processors: ModeProcessors,
    private readonly participants: ParticipantsService,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
    private readonly metrics: MetricsService,
    private readonly outages: DependencyOutages,
  ) {}

  get instanceId(): string {
    return this.writer.instanceId;
  }

  /**
   * Makes the transaction durable; a one-shot one is then driven to its decision (a saga
   * without `wait`: in the background) and, with `wait`, to its end.
   */
  async create(input: NewTransaction, wait: boolean): Promise<Created> {
    const inserted = await this.writer.create(input);
    if (!inserted) return { created: false, loaded: await this.require(input.gid) };
    crashPoint('after_begin', input.gid);
    forTransaction(this.logger, input.gid).debug(`begun: ${input.mode}, ${input.oneShot ? `${input.branches.length} branch(es)` : 'interactive'}`, {
      mode: input.mode,
      branches: input.branches.length,
    });
    if (!input.oneShot) return { created: true, loaded: inserted };
    if (input.mode === 'saga' && !wait) {
      // A saga may take long: answer once it is durable and run its steps in the background.
      this.processors
        .get(input.mode)
        .start(inserted)
        .then((started) => this.finish(started, false))
        .catch((error: unknown) => this.backgroundFailed(input.gid, 'saga run', error));
      return { created: true, loaded: inserted };
    }
    const decided = await this.processors
      .get(input.mode)
      .start(inserted)
      .catch((error: unknown) => this.unlessLeaseLost(error, input.gid));
    return { created: true, loaded: await this.finish(decided, wait) };
  }

  /**
   * Adds a branch to an active interactive transaction and runs its phase 1, once: the same
   * branchId again returns the branch as recorded, with no second call. Reads the others'
   * statuses only, never their payloads or results: the n-th add costs about what the first did.
   */
  async addBranch(gid: string, branch: NewBranch, scope: TxScope = null): Promise<BranchRecord> {
    const found = await this.writer.loadForAdd(gid, branch.branchId);
    if (!found || !visibleTo(found.tx, scope)) throw new TransactionNotFoundError(gid);
    if (found.existing) return found.existing;
    const machine: MachineTx = { mode: found.tx.mode, status: found.tx.status, reason: found.tx.reason, branches: found.branches };
    const added = transition(machine, { type: 'branch_added', branchId: branch.branchId });
    // A refusal shows the whole transaction (PROTOCOL.md 3.2), so only then is it read whole.
    if (!added.ok) throw new TransactionRefusedError(added.error, await this.require(gid));
    const limit = this.config.env.MAX_BRANCHES_PER_TRANSACTION;
    if (found.branches.length >= limit) throw new TooManyBranchesError(gid, limit);
    const participant = await this.participants.resolve(branch.participant, branch.action, found.tx.mode, '');
    // The registered spelling (names are case-insensitive), so every branch on it names it alike.
    const named: NewBranch = { ...branch, participant: participant.name };

    const inserted = await this.writer.addBranch(gid, named, [
      { type: 'branch_added', branchId: branch.branchId, to: 'pending', detail: { participant: named.participant, action: branch.action } },
    ]);
    if (!inserted) {
      const now = await this.writer.loadForAdd(gid, branch.branchId);
      if (now?.existing) return now.existing;
      if (now && now.tx.status === 'active' && now.branches.length >= limit) throw new TooManyBranchesError(gid, limit);
      throw new TransactionRefusedError(ErrorCode.TX_NOT_ACTIVE, await this.require(gid));
    }
    crashPoint('after_branch_recorded', gid);

    const phase = this.processors.get(found.tx.mode).phases.phase1;
    const outcome = await this.caller.call(found, inserted, phase);
    const answered = transition(added.tx, { type: 'phase1_answered', answers: [{ branchId: branch.branchId, answer: phase1AnswerOf(outcome) }] });
    const status = answered.ok ? branchStatusIn(answered.tx)(inserted) : inserted.status;
    const saved = await this.writer.recordPhase1(
      gid,
      branch.branchId,
      status,
      // An AT prepare's locked rows are recorded in the same write as its answer.
      outcome.kind === 'ok' ? { result: outcome.result, ...lockedRowsOf(outcome) } : { lastError: errorOf(outcome) },
      [callEvent(inserted, phase, outcome, status)],
    );
    return saved ?? { ...inserted, status };
  }

  /**
   * A client's or operator's decision, written with compare-and-set and retried on a fresh read
   * while other writers (a branch being added, a timeout) move the transaction; then phase 2
   * (inline with `wait`).
   */
  async decide(gid: string, event: RequestedDecision, wait: boolean, scope: TxScope = null): Promise<Decided> {
    let loaded = await this.require(gid);
    if (!visibleTo(loaded.tx, scope)) throw new TransactionNotFoundError(gid);
    for (let attempt = 1; attempt <= DECIDE_ATTEMPTS; attempt++) {
      const result = transition(machineOf(loaded), event);
      if (!result.ok) throw new TransactionRefusedError(result.error, loaded);
      if (!result.changed) return { loaded: wait ? await this.waitForTerminal(gid) : loaded, cannotCommit: false };
      const decided = await this.applyDecision(loaded, event);
      if (decided) return { loaded: await this.finish(decided, wait), cannotCommit: result.error === ErrorCode.CANNOT_COMMIT };
      loaded = await this.require(gid);
    }
    throw new TransactionRefusedError(ErrorCode.TX_NOT_ACTIVE, loaded, `transaction ${gid} is changing too fast; try again`);
  }

  async get(gid: string, scope: TxScope = null): Promise<LoadedTx> {
    const loaded = await this.require(gid);
    if (!visibleTo(loaded.tx, scope)) throw new TransactionNotFoundError(gid);
    return loaded;
  }

  /** Whether a transaction with this gid exists (whoever began it). */
  async exists(gid: string): Promise<boolean> {
    return (await this.writer.load(gid)) !== null;
  }

  /** Whether a client of `scope` may see the transaction (a begin with a gid another key took is a conflict). */
  visibleTo(tx: TxRecord, scope: TxScope): boolean {
    return visibleTo(tx, scope);
  }

  /** Refuses a mode no processor runs (400 MODE_NOT_SUPPORTED), before anything is read or written. */
  checkMode(mode: Mode): void {
    this.processors.get(mode);
  }

  /** A transaction's history, oldest first (none for an unknown gid): for operators. */
  events(gid: string): Promise<TransactionEventView[]> {
    return this.writer.events(gid);
  }

  /**
   * An operator's "retry now" (PROTOCOL.md 6): phase-2 delivery, or a waiting saga's next step,
   * due at once, through the writer. `leased`: an instance holds a live lease on it and is
   * driving it now, so it is left alone; `not_retryable`: nothing to retry (terminal, or active
   * and not a saga). `loaded` is the transaction as read before the write; recovery, not this
   * method, then claims it.
   */
  async retryNow(gid: string): Promise<{ outcome: RetryOutcome; loaded: LoadedTx }> {
    const loaded = await this.require(gid);
    return { outcome: await this.writer.makeDue(gid), loaded };
  }

  /**
   * Resolves when the transaction is terminal or `WAIT_MAX_MS` passed. Woken by the bus (this or
   * another instance finishing it) and, should a message be lost, by polling the store.
   */
  async waitForTerminal(gid: string): Promise<LoadedTx> {
    const deadline = performance.now() + this.config.env.WAIT_MAX_MS;
    let wake: (() => void) | null = null;
    const unsubscribe = this.bus.subscribe((message) => {
      if (message.kind === 'tx' && message.gid === gid && isTerminal(message.status)) wake?.();
    });
    try {
      for (;;) {
        const loaded = await this.require(gid);
        const remaining = deadline - performance.now();
        if (isTerminal(loaded.tx.status) || remaining <= 0) return loaded;
        await new Promise<void>((resolve) => {
          wake = resolve;
          void sleep(Math.min(this.config.env.WAIT_POLL_MS, remaining)).then(resolve);
        });
      }
    } finally {
      unsubscribe();
    }
  }

  /** Claims due transactions for recovery, each with this instance's lease. */
  claimDue(limit: number): Promise<LoadedTx[]> {
    return this.writer.claimDue(limit);
  }

  /** What recovery does with a transaction it claimed. */
  async resume(loaded: LoadedTx): Promise<void> {
    let current: LoadedTx | null = loaded;
    if (loaded.tx.status === 'active') {
      const processor = this.processors.get(loaded.tx.mode);
      const expired = processor.expiredWhenClaimed(loaded);
      current = expired ? await this.applyDecision(loaded, { type: 'deadline_passed' }) : await processor.resumeActive(loaded);
      if (expired && current) forTransaction(this.logger, loaded.tx.gid).log('timed out: rolling back');
    }
    if (current) await this.deliverPhase2(current);
  }

  /**
   * Phase 2 after a durable decision: inline when the caller waits (then to the end, whoever
   * delivers it), in the background otherwise. Only the lease holder delivers.
   */
  private async finish(decided: LoadedTx, wait: boolean): Promise<LoadedTx> {
    const ours = decided.tx.leaseOwner === this.instanceId;
    if (!wait) {
      if (ours) this.deliverInBackground(decided);
      return decided;
    }
    const delivered = ours ? await this.deliverPhase2(decided).catch((error: unknown) => this.unlessLeaseLost(error, decided.tx.gid)) : null;
    if (delivered && isTerminal(delivered.tx.status)) return delivered;
    return this.waitForTerminal(decided.tx.gid);
  }

  /**
   * Writes a decision (commit, rollback, deadline) with compare-and-set and takes the lease for
   * phase 2. Returns the saved transaction, or null when another writer won the race.
   */
  private async applyDecision(loaded: LoadedTx, event: DecisionEvent): Promise<LoadedTx | null> {
    const result = transition(machineOf(loaded), event);
    if (!result.ok || !result.changed) return loaded;
    const saved = await this.writer.write(loaded, {
      status: result.tx.status,
      reason: result.tx.reason,
      attempts: 0,
      ...this.writer.ownLease(),
      branches: [],
      events: [{ type: 'status', from: loaded.tx.status, to: result.tx.status, detail: { reason: result.tx.reason, cause: event.type } }],
    });
    if (saved) {
      crashPoint('after_decision', loaded.tx.gid);
      forTransaction(this.logger, loaded.tx.gid).debug(`decided: ${saved.tx.status}`, {
        status: saved.tx.status,
        reason: saved.tx.reason,
        cause: event.type,
      });
    }
    return saved;
  }

  /**
   * Delivers phase 2 in rounds (all branches at once for tcc/2pc; reverse dependency order for
   * saga compensation). Each round's answers, and the terminal status once every branch has
   * answered, are written in one commit; a round with failures schedules the next attempt with
   * capped exponential backoff and jitter. Returns null when fenced off by another instance.
   */
  private async deliverPhase2(loaded: LoadedTx): Promise<LoadedTx | null> {
    let current = loaded;
    while (current.tx.status === 'committing' || current.tx.status === 'rolling_back') {
      const { tx } = current;
      const processor = this.processors.get(tx.mode);
      const phase = tx.status === 'committing' ? processor.phases.commit : processor.phases.rollback;
      if (!phase && tx.status === 'committing') throw new Error(`mode ${tx.mode} has no phase for ${tx.status}`);

      const wave = processor.phase2Wave(current);
      // msg has no rollback phase: no branch was sent anything before the decision, so none is
      // owed a call, and each is rolled back as it stands.
      const outcomes: CallOutcome[] = phase
        ? await this.caller.callAll(current, wave, phase, () => crashPoint('mid_phase2', tx.gid))
        : wave.map(() => ({ kind: 'ok', result: null }));
      if (phase) crashPoint('after_phase2_calls', tx.gid);

      const answers = wave.map((b, i) => ({ branchId: b.branchId, answer: phase2AnswerOf(outcomes[i]) }));
      const result = transition(machineOf(current), { type: 'phase2_answered', answers });
      if (!result.ok) throw new Error(`phase-2 answers refused: ${result.error}`);
      const next = result.tx;
      const terminal = isTerminal(next.status);
      const allOk = outcomes.every((o) => o.kind === 'ok');
      const attempts = allOk ? tx.attempts : tx.attempts + 1;
      const refused = outcomes.some((o) => o.kind === 'failed');
      const needsAttention = !terminal && (refused || attempts >= this.writer.attentionAfterAttempts);
      const statusOf = branchStatusIn(next);

      const events = phase ? wave.map((b, i) => callEvent(b, phase, outcomes[i], statusOf(b))) : [];
      if (terminal) events.push({ type: 'status', from: tx.status, to: next.status, detail: { reason: next.reason } });
      if (needsAttention && !tx.needsAttention) events.push({ type: 'attention', detail: { attempts, refused } });
      const schedule: Pick<TxChange, 'lease' | 'nextAttemptInMs'> = terminal
        ? { lease: null, nextAttemptInMs: null }
        : allOk
          ? this.writer.ownLease() // more rounds to go right now (saga compensation order)
          : { lease: null, nextAttemptInMs: this.writer.retryDelayMs(attempts) };

      const saved = await this.writer.write(current, {
        status: next.status,
        reason: next.reason,
        attempts,
        needsAttention,
        ...schedule,
        branches: wave.map((b, i) => ({
          branchId: b.branchId,
          status: statusOf(b),
          calls: phase ? 1 : 0,
          // Why phase 1 failed (refusal, no answer) stays visible after the rollback; on a branch
          // whose phase 1 succeeded the only errors are phase-2 retries, cleared once one succeeds.
          lastError: outcomes[i].kind !== 'ok' ? errorOf(outcomes[i]) : b.status === 'failed' || b.status === 'pending' ? undefined : null,
        })),
        events,
      });
      if (!saved) {
        forTransaction(this.logger, tx.gid).warn('phase-2 result not written: another instance holds the transaction');
        return null;
      }
      current = saved;
      if (current.tx.status === 'rolling_back' && tx.mode === 'saga') crashPoint('during_compensation', tx.gid);
      if (terminal) forTransaction(this.logger, tx.gid).debug(`finished: ${next.status}`, { status: next.status, reason: next.reason });
      if (!allOk) {
        this.metrics.retries.inc({ mode: tx.mode });
        const txLogger = forTransaction(this.logger, tx.gid);
        // One line per branch still owed its phase 2, so each can be followed by its branchId.
        wave.forEach((branch, i) => {
          const outcome = outcomes[i];
          if (outcome.kind === 'ok') return;
          // Why, too: without it an operator reading the log cannot tell a down participant from a lock timeout.
          const error = errorOf(outcome);
          const why = typeof error === 'string' ? error : JSON.stringify(error);
          const line = `phase 2 (${phase}) incomplete after attempt ${attempts}; retrying later`;
          const detail = { phase, attempts, outcome: outcome.kind, error: why.slice(0, 300) };
          // A call the participant's gate held back (its breaker open, its queue full) is no news
          // per transaction: the breaker's own line and the metrics say it once for all of them.
          if (wasNotCalled(outcome)) txLogger.branch(branch.branchId).debug(line, detail);
          else txLogger.branch(branch.branchId).warn(line, detail);
        });
        break;
      }
    }
    return current;
  }

  /** Phase 2 in the background, after the decision was answered. */
  private deliverInBackground(loaded: LoadedTx): void {
    this.deliverPhase2(loaded).catch((error: unknown) => this.backgroundFailed(loaded.tx.gid, 'phase-2 delivery', error));
  }

  /** Work after the answer failed; recovery resumes the transaction either way. */
  private backgroundFailed(gid: string, work: string, error: unknown): void {
    if (isStoreUnavailable(error)) {
      // Postgres away is an outage, said once for every transaction it interrupts.
      this.outages.postgres.failed(error);
      forTransaction(this.logger, gid).debug(`${work} interrupted: ${String(error)}; recovery will resume it`);
    } else {
      forTransaction(this.logger, gid).error(`${work} failed: ${String(error)}; recovery will resume it`);
    }
  }

  /** A lease lost mid-way is not an error for the caller: another instance finishes the work. */
  private async unlessLeaseLost(error: unknown, gid: string): Promise<LoadedTx> {
    if (!(error instanceof LeaseLostError)) throw error;
    forTransaction(this.logger, error.gid).warn(error.message);
    return this.require(gid);
  }

  private async require(gid: string): Promise<LoadedTx> {
    const loaded = await this.writer.load(gid);
    if (!loaded) throw new TransactionNotFoundError(gid);
    return loaded;
  }
}
