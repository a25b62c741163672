import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { isTerminal, type BranchStatus, type TransactionEventView } from '@nest-dtx/protocol';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { BranchRecord, EventInput, LoadedTx, MadeDue, NewBranch, NewTransaction, Phase1Outcome, TxChange, TxForAdd } from '../store/records.js';
import { TransactionStore, type AppliedChange } from '../store/transaction.store.js';
import { backoffDelayMs, waitingDelayMs } from './backoff.js';
import { HeldAnswers, heldBranchChange, withHeldAnswer, withHeldAnswers, withHeldAnswersForAdd, type HeldAnswer } from './held-answers.js';
import { carriesAnswers, refusedForItsData, unkeptAnswerEvents, withAnswersDropped } from './storable-answer.js';

/**
 * A write that records answers only as markers (storable-answer.ts) flags its transaction for
 * attention, with an event naming each such branch: an operator must learn what the
 * participant did, since the coordinator could not keep what it said.
 */
function flagUnkeptAnswers(change: TxChange): TxChange {
  const attention = unkeptAnswerEvents(change.branches);
  return attention.length === 0 ? change : { ...change, needsAttention: true, events: [...change.events, ...attention] };
}

/**
 * The engine's only way to the store. Every write passes here: the compare-and-set, the
 * state-change notification on the bus, the finished-transaction metric, the in-memory merge,
 * and the lease rule (this instance holds a lease it took from just before the write that
 * took it, for LEASE_MS: `heldUntil`), in one place. `heldUntil` is on the monotonic clock
 * (performance.now()): Postgres starts the lease later than that, at the write, and a step of
 * this machine's wall clock moves neither end.
 */
@Injectable()
export class TransactionWriter implements BeforeApplicationShutdown {
  private readonly logger = new Logger(TransactionWriter.name);
  /** Workflow steps' answers given to their hosts and written with the next write (held-answers.ts). */
  private readonly held = new HeldAnswers();
  /** Each gid's timer that writes its held answers on their own, should no other write come first. */
  private readonly holdTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: TransactionStore,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** What is held is written before the store closes (a crash loses it: the participants answer again). */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.held.gids().map((gid) => this.writeHeld(gid)));
  }

  get instanceId(): string {
    return this.config.instanceId;
  }

  /** A lease for this instance, long enough to finish what it is doing. */
  ownLease(): Pick<TxChange, 'lease' | 'nextAttemptInMs'> {
    return { lease: { owner: this.instanceId, ms: this.config.env.LEASE_MS }, nextAttemptInMs: this.config.env.LEASE_MS };
  }

  retryDelayMs(attempt: number): number {
    return backoffDelayMs({ baseMs: this.config.env.RETRY_BASE_MS, capMs: this.config.env.RETRY_MAX_MS }, attempt);
  }

  /** The wait before asking again a participant that answered ongoing without saying when (backoff.ts waitingDelayMs). */
  waitingDelayMs(waitedMs: number): number {
    return waitingDelayMs({ baseMs: this.config.env.RETRY_BASE_MS, capMs: this.config.env.RETRY_MAX_MS }, waitedMs);
  }

  get attentionAfterAttempts(): number {
    return this.config.env.ATTENTION_AFTER_ATTEMPTS;
  }

  /** Inserts a new transaction (with this instance's lease when `leaseOwner` is set); null when the gid exists. */
  async create(input: NewTransaction): Promise<LoadedTx | null> {
    const startedAt = performance.now();
    const inserted = await this.store.insert(input, this.config.env.LEASE_MS);
    if (!inserted) return null;
    this.metrics.begun.inc({ mode: input.mode });
    this.bus.publish({ kind: 'tx', gid: input.gid, status: 'active' });
    return input.leaseOwner === this.instanceId ? this.leased(inserted, startedAt) : inserted;
  }

  /**
   * Applies `change` if nobody else moved the transaction; null when fenced off. The answers
   * held for it ride along (unless the change itself writes their branch).
   */
  async write(loaded: LoadedTx, own: TxChange): Promise<LoadedTx | null> {
    const startedAt = performance.now();
    const { gid } = loaded.tx;
    const riding = this.held.has(gid) ? this.held.ride(gid, new Set(own.branches.map((b) => b.branchId))) : [];
    const change: TxChange =
      riding.length === 0 ? own : { ...own, branches: [...riding.map(heldBranchChange), ...own.branches], events: [...riding.flatMap((a) => a.events), ...own.events] };
    let saved: AppliedChange | null;
    try {
      saved = await this.store.apply(gid, loaded.tx.version, flagUnkeptAnswers(change)).catch((error: unknown) => {
        if (!refusedForItsData(error) || !carriesAnswers(change.branches, change.events)) throw error;
        // Refused for an answer it carries: the same write without them, or the call behind it would be made again and again.
        const dropped = withAnswersDropped(change.branches, change.events, error);
        return this.store.apply(loaded.tx.gid, loaded.tx.version, flagUnkeptAnswers({ ...change, branches: dropped.answers, events: dropped.events }));
      });
    } finally {
      this.held.letGo(riding);
    }
    if (!saved) return null;
    this.released(gid, riding);
    if (saved.tx.status !== loaded.tx.status || isTerminal(saved.tx.status)) {
      this.bus.publish({ kind: 'tx', gid: saved.tx.gid, status: saved.tx.status });
    }
    if (isTerminal(saved.tx.status) && !isTerminal(loaded.tx.status)) {
      this.metrics.finished.inc({ mode: saved.tx.mode, status: saved.tx.status, reason: saved.tx.reason ?? '' });
    }
    const changed = new Map(saved.branches.map((b) => [b.branchId, b]));
    const merged: LoadedTx = { tx: saved.tx, branches: loaded.branches.map((b) => changed.get(b.branchId) ?? b) };
    return change.lease?.owner === this.instanceId ? this.leased(merged, startedAt) : merged;
  }

  /**
   * Records a branch added to an active interactive transaction (or a workflow's step); null
   * when it is not active, the branch exists, or it holds MAX_BRANCHES_PER_TRANSACTION branches
   * already. `nextLookInMs` puts off the transaction's next look (a workflow's resume), never
   * past its deadline.
   */
  async addBranch(gid: string, branch: NewBranch, events: EventInput[], nextLookInMs: number | null = null): Promise<BranchRecord | null> {
    const max = this.config.env.MAX_BRANCHES_PER_TRANSACTION;
    const riding = this.held.has(gid) ? this.held.ride(gid) : [];
    if (riding.length === 0) return this.store.insertBranch(gid, branch, events, max, nextLookInMs);
    const withAnswers = [...riding.flatMap((a) => a.events), ...events];
    const answers = riding.map((a) => ({ branchId: a.branchId, status: a.status, ...a.outcome }));
    let written = true;
    let inserted: BranchRecord | null;
    try {
      inserted = await this.store.insertBranch(gid, branch, withAnswers, max, nextLookInMs, answers).catch((error: unknown) => {
        // Refused for an answer's data: the branch alone; the answers are written on their own (recordPhase1 keeps what it can).
        if (!refusedForItsData(error)) throw error;
        written = false;
        return this.store.insertBranch(gid, branch, events, max, nextLookInMs);
      });
    } finally {
      this.held.letGo(riding);
    }
    // Not inserted (no longer active, say): the answers were not written either, and stay held.
    if (inserted && written) this.released(gid, riding);
    else this.writeHeldSoon(gid, 0);
    return inserted;
  }

  /**
   * Holds a workflow step's final phase-1 answer, to be written with the workflow's next write
   * (held-answers.ts says why that is safe), and returns the step as it then reads; null, holding
   * nothing, when answers are not held (WORKFLOW_ANSWER_HOLD_MS 0) or this one must be written
   * at once: it waits (ongoing), locks rows or could not be kept as it is.
   */
  hold(gid: string, branch: BranchRecord, status: BranchStatus, outcome: Phase1Outcome, events: EventInput[]): BranchRecord | null {
    const holdMs = this.config.env.WORKFLOW_ANSWER_HOLD_MS;
    const { result, lastError } = outcome;
    const plain = outcome.locks === undefined && outcome.waiting === undefined && outcome.needsAttention === undefined && outcome.askAgainInMs === undefined;
    if (holdMs === 0 || !plain || status === 'pending') return null;
    if (unkeptAnswerEvents([{ result, lastError, branchId: branch.branchId }]).length > 0) return null;
    const kept = { ...(result === undefined ? {} : { result }), ...(lastError === undefined ? {} : { lastError }) };
    const answer: HeldAnswer = { branchId: branch.branchId, status, outcome: kept, events };
    this.held.hold(gid, answer);
    this.writeHeldSoon(gid, holdMs);
    return withHeldAnswer(branch, answer);
  }

  /** Writes `gid`'s held answers on their own in `ms`, unless a timer for that is set already (or another write takes them first). */
  private writeHeldSoon(gid: string, ms: number): void {
    if (this.holdTimers.has(gid) || !this.held.has(gid)) return;
    const timer = setTimeout(() => {
      this.holdTimers.delete(gid);
      void this.writeHeld(gid);
    }, ms);
    timer.unref();
    this.holdTimers.set(gid, timer);
  }

  /** Writes the answers held for `gid` on their own (nothing else wrote them in time); kept, and tried again, if the store fails. */
  private async writeHeld(gid: string): Promise<void> {
    const riding = this.held.ride(gid);
    for (const answer of riding) {
      try {
        await this.recordPhase1(gid, answer.branchId, answer.status, answer.outcome, answer.events);
        this.released(gid, [answer]);
      } catch (error) {
        this.held.letGo(riding);
        this.logger.warn(`workflow ${gid}: the answer of step ${answer.branchId} is not written yet (${String(error)}); trying again`);
        this.writeHeldSoon(gid, this.config.env.RETRY_BASE_MS);
        return;
      }
    }
  }

  /** Forgets written answers; the gid's timer goes with its last one. */
  private released(gid: string, written: readonly HeldAnswer[]): void {
    if (written.length === 0) return;
    this.held.release(gid, written);
    if (this.held.has(gid)) return;
    const timer = this.holdTimers.get(gid);
    if (timer) clearTimeout(timer);
    this.holdTimers.delete(gid);
  }

  /** Records the phase-1 answer of an interactive branch (with an AT prepare's locked rows). */
  async recordPhase1(gid: string, branchId: string, status: BranchStatus, outcome: Phase1Outcome, events: EventInput[]): Promise<BranchRecord | null> {
    const record = (answer: Phase1Outcome, withEvents: EventInput[]) => {
      const attention = unkeptAnswerEvents([{ ...answer, branchId }]);
      return this.store.recordPhase1(gid, branchId, status, attention.length ? { ...answer, needsAttention: true } : answer, [...withEvents, ...attention]);
    };
    try {
      return await record(outcome, events);
    } catch (error) {
      if (!refusedForItsData(error) || !carriesAnswers([outcome], events)) throw error;
      const dropped = withAnswersDropped([outcome], events, error);
      return record(dropped.answers[0], dropped.events);
    }
  }

  /** Claims up to `limit` due transactions for this instance, each with its lease. */
  async claimDue(limit: number): Promise<LoadedTx[]> {
    const startedAt = performance.now();
    const claimed = await this.store.claimDue(this.instanceId, this.config.env.LEASE_MS, limit);
    return claimed.map((loaded) => this.leased(withHeldAnswers(loaded, this.held.of(loaded.tx.gid)), startedAt));
  }

  /**
   * The operator's "retry now": a decided transaction (or a running saga, or an active workflow) due at once, unless an
   * instance holds a live lease on it (it is being driven now). Told on the bus like a status
   * change, so consoles show the retry (its status stays what it was).
   */
  async makeDue(gid: string): Promise<MadeDue['outcome']> {
    const made = await this.store.makeDue(gid);
    if (made.outcome === 'due') this.bus.publish({ kind: 'tx', gid, status: made.status });
    return made.outcome;
  }

  /** The transaction as written, with the answers this instance holds for it. */
  async load(gid: string): Promise<LoadedTx | null> {
    const loaded = await this.store.load(gid);
    return loaded && withHeldAnswers(loaded, this.held.of(gid));
  }

  /** The transaction's history, oldest first. */
  events(gid: string): Promise<TransactionEventView[]> {
    return this.store.events(gid);
  }

  /** The transaction as adding one branch needs it, without the other branches' payloads and results. */
  async loadForAdd(gid: string, branchId: string): Promise<TxForAdd | null> {
    const found = await this.store.loadForAdd(gid, branchId);
    return found && withHeldAnswersForAdd(found, this.held.of(gid));
  }

  private leased(loaded: LoadedTx, startedAt: number): LoadedTx {
    return { ...loaded, heldUntil: startedAt + this.config.env.LEASE_MS };
  }
}
