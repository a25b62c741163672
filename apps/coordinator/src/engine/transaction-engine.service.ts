import { Injectable, Logger } from '@nestjs/common';
import type { Link } from '@opentelemetry/api';
import { ErrorCode, isTerminal, MSG_CHECK_BRANCH_ID, type Json, type TransactionEventView } from '@nest-dtx/protocol';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { isStoreUnavailable } from '../common/store-unavailable.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { DependencyOutages } from '../logging/dependency-outages.js';
import { debugLogged } from '../logging/json-logger.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { ParticipantsService } from '../participants/participants.service.js';
import { DatabaseTime } from '../store/database-clock.js';
import { inTransactionSpan } from '../telemetry/tracing.js';
import type { BranchChange, BranchRecord, LoadedTx, MadeDue, NewBranch, NewTransaction, TxForAdd, TxRecord } from '../store/records.js';
import { LeaseLostError } from './branch-caller.js';
import { crashPoint } from './crash-points.js';
import {
  BranchNotFoundError,
  InvalidRequestError,
  NotParticipantOwnerError,
  OverloadedError,
  TooManyBranchesError,
  TransactionBusyError,
  TransactionNotFoundError,
  TransactionRefusedError,
} from './errors.js';
import { machineOf, waitingIn } from './machine.js';
import { newTransaction, sameStep, untilDeadlineMs, type BeginRequest, type NewTransactionParts, type StepRequest } from './processors/mode-processor.js';
import { ModeRegistry } from './processors/mode-registry.js';
import { readBranchReport, readCheckReport, reportedOutcome, type OutcomeReport, type ReportReading } from './reported-outcome.js';
import { transition, type MachineEvent, type MachineTx } from './state-machine.js';
import { TransactionRound } from './transaction-round.js';
import { TransactionWriter } from './transaction-writer.js';
import { isPostponed, phase1Wave } from './wave.js';

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

/**
 * Who reports an outcome (PROTOCOL.md 3.6): the digest of the API key it came with, which must
 * own the branch's participant name (4); null for anyone (an admin key, or no keys configured).
 */
export type ReporterScope = Buffer | null;

/** A transaction begun without a recorded key (no keys then, or before keys were recorded) is anyone's. */
const visibleTo = (tx: TxRecord, scope: TxScope): boolean => scope === null || tx.ownerKeyDigest === null || scope.equals(tx.ownerKeyDigest);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How often a decision retries its compare-and-set when other writers keep moving the transaction. */
const DECIDE_ATTEMPTS = 10;

/** How often a reported outcome looks again whether the instance driving its transaction has let it go. */
const REPORT_POLL_MS = 50;

/** How far driving a transaction goes: to its decision (a one-shot's begin), through phase 2 only, or all the way. */
type Reach = 'decision' | 'phase2' | 'end';

/**
 * The only conductor of transactions and, through its writer, the only writer of the log:
 * creates them, adds branches, decides, delivers phase 2 until every branch has answered, waits
 * for the end, and resumes whatever recovery claims. Each mode plugs in as a processor
 * (ModeRegistry) that chooses the waves of calls; every wave runs through the one
 * TransactionRound. Refusals are engine errors (errors.ts); the API layer words them.
 */
@Injectable()
export class TransactionEngine {
  private readonly logger = new Logger(TransactionEngine.name);

  constructor(
    private readonly writer: TransactionWriter,
    private readonly round: TransactionRound,
    private readonly modes: ModeRegistry,
    private readonly participants: ParticipantsService,
    private readonly gates: ParticipantGates,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
    private readonly clock: DatabaseTime,
    private readonly outages: DependencyOutages,
  ) {}

  get instanceId(): string {
    return this.writer.instanceId;
  }

  /**
   * A begin request (PROTOCOL.md 3.1) as a new transaction: its mode validates it and shapes
   * it, admission control lets it in (or refuses before anything is written), and it is created.
   */
  async begin(request: BeginRequest, wait: boolean): Promise<Created> {
    const parts = await this.modes.get(request.mode).begin(request);
    // Refused while the participants it names (or this instance) have more calls waiting than
    // admitted work may add to. A begin sent again for a transaction that exists adds no work: it is answered as always.
    const named = parts.branches.map((b) => b.participant);
    const refusal = this.gates.admissionRefusal(parts.check ? [...named, parts.check.participant] : named);
    if (refusal && !(request.gidChosen && (await this.exists(request.gid)))) {
      this.gates.countAdmission('refused');
      throw new OverloadedError(refusal.reason, refusal.retryAfterSeconds);
    }
    this.gates.countAdmission('admitted');
    const leaseOwner = parts.oneShot ? this.instanceId : null;
    return this.create(newTransaction(request, parts, { leaseOwner, firstAttemptInMs: this.firstLookInMs(parts.firstLook, request.timeoutMs) }), wait);
  }

  /** When recovery first looks at a new transaction, in milliseconds from its creation: never past its deadline. */
  private firstLookInMs(firstLook: NewTransactionParts['firstLook'], timeoutMs: number): number {
    if (firstLook === 'deadline') return timeoutMs;
    return Math.min(firstLook === 'lease' ? this.config.env.LEASE_MS : firstLook.afterMs, timeoutMs);
  }

  /**
   * Makes the transaction durable; a one-shot one is then driven to its decision (in the
   * background when its mode's phase 1 may take long and nobody waits) and, with `wait`, to its end.
   */
  async create(input: NewTransaction, wait: boolean): Promise<Created> {
    const inserted = await this.writer.create(input);
    if (!inserted) return { created: false, loaded: await this.require(input.gid) };
    crashPoint('after_begin', input.gid);
    if (debugLogged()) forTransaction(this.logger, input.gid).debug(`begun: ${input.mode}, ${input.oneShot ? `${input.branches.length} branch(es)` : 'interactive'}`, {
      mode: input.mode,
      branches: input.branches.length,
    });
    if (!input.oneShot) return { created: true, loaded: inserted };
    if (this.modes.get(input.mode).phase1InBackground && !wait) {
      // Answer once it is durable, and run its phase 1 in the background.
      this.drive(inserted, 'decision')
        .then((started) => started && this.finish(started, false))
        .catch((error: unknown) => this.backgroundFailed(input.gid, `${input.mode} run`, error));
      return { created: true, loaded: inserted };
    }
    const decided = await this.drive(inserted, 'decision').catch((error: unknown) => this.unlessLeaseLost(error, input.gid));
    return { created: true, loaded: await this.finish(decided ?? (await this.require(input.gid)), wait) };
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
    return inTransactionSpan('dtx.add_branch', found.tx, () => this.addNewBranch(gid, found, branch));
  }

  private async addNewBranch(gid: string, found: TxForAdd, branch: NewBranch): Promise<BranchRecord> {
    const mode = this.modes.get(found.tx.mode);
    // A mode that takes no added branch (a saga, a message, a workflow whose steps carry their
    // own kind) has none to say for one; the machine refuses it.
    const kind = mode.rules.addsBranches ? mode.kindOf(branch) : null;
    const added = transition(machineOf(found, mode), { type: 'branch_added', branchId: branch.branchId, kind });
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

    return this.round.runForAddedBranch(found, added.tx, phase1Wave([inserted], mode));
  }

  /**
   * Records a workflow's step (PROTOCOL.md 3.7) as its host ran it, once: a branch step is
   * recorded pending and its phase 1 run as an added branch's is, a local step is recorded
   * committed with its result. The same stepId again returns the step as recorded and calls no
   * one, unless it is not the same step (STEP_MISMATCH: the workflow did not replay the way it
   * ran). Each step puts off the workflow's next resume. Reads the others' statuses and kinds
   * only, as addBranch does.
   */
  async recordStep(gid: string, request: StepRequest, scope: TxScope = null): Promise<BranchRecord> {
    const found = await this.writer.loadForAdd(gid, request.stepId);
    if (!found || !visibleTo(found.tx, scope)) throw new TransactionNotFoundError(gid);
    return inTransactionSpan('dtx.record_step', found.tx, () => this.recordFoundStep(gid, found, request));
  }

  private async recordFoundStep(gid: string, found: TxForAdd, request: StepRequest): Promise<BranchRecord> {
    const mode = this.modes.get(found.tx.mode);
    const recorded = transition(machineOf(found, mode), { type: 'step_recorded', branchId: request.stepId, kind: request.kind });
    if (!recorded.ok) throw new TransactionRefusedError(recorded.error, await this.require(gid));
    if (found.existing) {
      const existing = await this.recordedStep(found.existing, request, gid);
      // Recorded, and no answer written (a crash lost the one held for it, or the first call is
      // still on its way): asked again, the same call (PROTOCOL.md 5.4 makes it harmless).
      return neverAnswered(existing) ? this.round.runForAddedBranch(found, recorded.tx, phase1Wave([existing], mode), true) : existing;
    }
    const limit = this.config.env.MAX_BRANCHES_PER_TRANSACTION;
    if (found.branches.length >= limit) throw new TooManyBranchesError(gid, limit);
    if (!mode.step) throw new Error(`mode ${found.tx.mode} records steps but its plug-in shapes none`);
    const { branch, nextLookInMs } = await mode.step(found.tx, request);

    const status = branch.status ?? 'pending';
    // A step waiting for its final answer (3.6) is asked again at its own time, before any
    // resume: the new step leaves that look as it is (its wait's end puts off the resume).
    const someWaiting = found.branches.some((b) => b.waitingSince);
    const inserted = await this.writer.addBranch(
      gid,
      branch,
      [{ type: 'branch_added', branchId: branch.branchId, to: status, detail: { participant: branch.participant, action: branch.action, kind: request.kind } }],
      someWaiting ? null : nextLookInMs,
    );
    if (!inserted) {
      const now = await this.writer.loadForAdd(gid, request.stepId);
      if (now?.existing) return this.recordedStep(now.existing, request, gid);
      if (now && now.tx.status === 'active' && now.branches.length >= limit) throw new TooManyBranchesError(gid, limit);
      throw new TransactionRefusedError(ErrorCode.TX_NOT_ACTIVE, await this.require(gid));
    }
    crashPoint('after_branch_recorded', gid);
    // A local step ran in its host: recorded as it ended, with nobody to call.
    if (inserted.status !== 'pending') return inserted;

    return this.round.runForAddedBranch(found, recorded.tx, phase1Wave([inserted], mode), true);
  }

  /**
   * Before a workflow's commit: its steps with no answer written that this instance does not
   * hold either, asked again (the same call; PROTOCOL.md 5.4 makes it harmless), so that an
   * answer its host already acted on decides the commit, not a step that reads pending. Their
   * answer was held by an instance that crashed, or is held by another instance (the host's
   * calls spread over instances). Only while active: a decided workflow's steps get phase 2.
   */
  private async askUnanswered(loaded: LoadedTx): Promise<LoadedTx> {
    const mode = this.modes.get(loaded.tx.mode);
    if (!mode.rules.recordsSteps || loaded.tx.status !== 'active') return loaded;
    const unanswered = loaded.branches.filter(neverAnswered);
    if (unanswered.length === 0) return loaded;
    const machine = machineOf(loaded, mode);
    await Promise.all(unanswered.map((step) => this.round.runForAddedBranch(loaded, machine, phase1Wave([step], mode), true)));
    return this.require(loaded.tx.gid);
  }

  /** A step recorded before, asked for again: its record, or STEP_MISMATCH when it is another step under the same stepId. */
  private async recordedStep(existing: BranchRecord, request: StepRequest, gid: string): Promise<BranchRecord> {
    if (sameStep(existing, request)) return existing;
    const was = existing.kind === 'local' ? 'a local step' : `a ${existing.kind ?? 'non-workflow'} step on ${existing.participant}/${existing.action}`;
    const asked = request.kind === 'local' ? 'a local step' : `a ${request.kind} step on ${request.participant}/${request.action}`;
    throw new TransactionRefusedError(
      ErrorCode.STEP_MISMATCH,
      await this.require(gid),
      `step ${request.stepId} is recorded as ${was}, and was asked for as ${asked}: the workflow did not replay the way it ran`,
    );
  }

  /**
   * A client's or operator's decision, written with compare-and-set and retried on a fresh read
   * while other writers (a branch being added, a timeout) move the transaction; then phase 2
   * (inline with `wait`).
   */
  async decide(gid: string, event: RequestedDecision, wait: boolean, scope: TxScope = null, commitResult?: Json): Promise<Decided> {
    const found = await this.require(gid);
    if (!visibleTo(found.tx, scope)) throw new TransactionNotFoundError(gid);
    return inTransactionSpan(`dtx.${event.type === 'commit_requested' ? 'commit' : 'rollback'}`, found.tx, () => this.decideFound(found, event, wait, commitResult));
  }

  private async decideFound(found: LoadedTx, event: RequestedDecision, wait: boolean, commitResult?: Json): Promise<Decided> {
    const { gid } = found.tx;
    let loaded = found;
    if (commitResult !== undefined && !this.modes.get(loaded.tx.mode).commitCarriesResult) {
      throw new InvalidRequestError('result', `result is only for mode workflow, not ${loaded.tx.mode}`);
    }
    if (event.type === 'commit_requested') loaded = await this.askUnanswered(loaded);
    for (let attempt = 1; attempt <= DECIDE_ATTEMPTS; attempt++) {
      const result = transition(machineOf(loaded, this.modes.get(loaded.tx.mode)), event);
      if (!result.ok) throw new TransactionRefusedError(result.error, loaded);
      if (!result.changed) return { loaded: wait ? await this.waitForTerminal(gid) : loaded, cannotCommit: false };
      const decided = await this.applyDecision(loaded, event, commitResult);
      if (decided) return { loaded: await this.finish(decided, wait), cannotCommit: result.error === ErrorCode.CANNOT_COMMIT };
      loaded = await this.require(gid);
    }
    throw new TransactionRefusedError(ErrorCode.TX_NOT_ACTIVE, loaded, `transaction ${gid} is changing too fast; try again`);
  }

  /**
   * A participant's report of the final answer to a phase call it answered ongoing (PROTOCOL.md
   * 3.6), with exactly the effect that answer to the call would have had, once: it runs through
   * the round as the wave of that branch alone, answered by the report instead of a call, then
   * the transaction is driven on in the background as after any answer (the decision, the next
   * saga steps, phase 2). Returns the transaction as written; for a repeat (the phase already had
   * this answer), as it is. PHASE_NOT_IN_PROGRESS for a phase that is not in progress for the
   * branch; msg's check-back is reported as branch `check`.
   *
   * Never written under another instance's live lease (that instance is calling, and would keep
   * sending under a version this write fences off): it waits for the lease to go, at most a lease
   * and a call long (TransactionBusyError after that), and reads again after a lost write.
   */
  async reportOutcome(gid: string, branchId: string, report: OutcomeReport, reporter: ReporterScope = null): Promise<LoadedTx> {
    const first = await this.require(gid);
    return inTransactionSpan('dtx.report_outcome', first.tx, () => this.applyReport(first, branchId, report, reporter));
  }

  private async applyReport(first: LoadedTx, branchId: string, report: OutcomeReport, reporter: ReporterScope): Promise<LoadedTx> {
    const { gid } = first.tx;
    const { LEASE_MS, CALL_TIMEOUT_MS } = this.config.env;
    const giveUpAt = performance.now() + LEASE_MS + CALL_TIMEOUT_MS;
    let checkedReporter = false;
    // Read again after each wait or lost write.
    for (let lost = 0, loaded = first; ; loaded = await this.require(gid)) {
      const mode = this.modes.get(loaded.tx.mode);
      const target = this.reportTarget(loaded, branchId, report);
      if (!checkedReporter) {
        await this.checkReporter(branchId, target.participant, reporter);
        checkedReporter = true;
      }
      if (target.reading === 'repeat') return loaded;
      if (target.reading === 'not_in_progress') {
        throw new TransactionRefusedError(ErrorCode.PHASE_NOT_IN_PROGRESS, loaded, `phase ${report.phase} of branch ${branchId} is not in progress (transaction ${loaded.tx.status})`);
      }
      const { leaseOwner, leaseUntil } = loaded.tx;
      if (leaseOwner !== null && leaseUntil !== null && this.clock.msUntil(leaseUntil) > 0) {
        if (performance.now() >= giveUpAt) throw new TransactionBusyError(gid, 1);
        await sleep(REPORT_POLL_MS);
        continue;
      }
      const { saved, continues } = await this.round.run(loaded, machineOf(loaded, mode), mode.waveOf(loaded, new Set([branchId])), [reportedOutcome(report)]);
      if (!saved) {
        // Another writer moved it between the read and the write (a claim, a decision): read again.
        if (++lost >= DECIDE_ATTEMPTS) throw new TransactionBusyError(gid, 1);
        continue;
      }
      forTransaction(this.logger, gid, branchId).debug(`${report.phase} outcome reported: ${report.outcome}`, { phase: report.phase, outcome: report.outcome });
      if (continues) this.driveInBackground(saved, 'reported outcome');
      return saved;
    }
  }

  /** The reported branch (or msg's check-back) with its participant, and what the report comes to for it now. */
  private reportTarget(loaded: LoadedTx, branchId: string, report: OutcomeReport): { participant: string; reading: ReportReading } {
    const { tx } = loaded;
    if (tx.check && branchId === MSG_CHECK_BRANCH_ID && report.phase === 'check') {
      return { participant: tx.check.participant, reading: readCheckReport(tx, untilDeadlineMs(loaded, this.clock) <= 0, report.outcome) };
    }
    const branch = loaded.branches.find((b) => b.branchId === branchId);
    if (!branch) throw new BranchNotFoundError(tx.gid, branchId);
    const mode = this.modes.get(tx.mode);
    const reading = readBranchReport(mode.rules, tx.status, { kind: mode.kindOf(branch), status: branch.status, sent: branch.attempts > 0 }, report);
    return { participant: branch.participant, reading };
  }

  /** PROTOCOL.md 3.6 and 4: only the key that owns the participant's name reports its outcomes (a name no key owns: any). */
  private async checkReporter(branchId: string, name: string, reporter: ReporterScope): Promise<void> {
    if (reporter === null) return;
    const participant = await this.participants.find(name);
    const owner = participant ? participant.ownerKeyDigest : null;
    if (!participant || (owner !== null && !owner.equals(reporter))) throw new NotParticipantOwnerError(branchId, name);
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

  /** A transaction's history, oldest first (none for an unknown gid): for operators. */
  events(gid: string): Promise<TransactionEventView[]> {
    return this.writer.events(gid);
  }

  /**
   * An operator's "retry now" (PROTOCOL.md 6): phase-2 delivery, a waiting saga's next step, or
   * an active workflow's resume of its host, due at once, through the writer. `leased`: an
   * instance holds a live lease on it and is driving it now, so it is left alone;
   * `not_retryable`: nothing to retry (terminal, or active and neither a saga nor a workflow). `loaded` is the transaction as read before the write; recovery, not this
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

  /**
   * What recovery does with a transaction it claimed: an active one past its deadline (judged
   * in the database's time, by the claim's own `now()`) meets it as its mode's rules say (rolled
   * back, or a message asked); then it is driven on from wherever it was.
   */
  resume(loaded: LoadedTx, pass?: Link[]): Promise<void> {
    return inTransactionSpan('dtx.recover', loaded.tx, () => this.resumeClaimed(loaded), pass);
  }

  private async resumeClaimed(loaded: LoadedTx): Promise<void> {
    let current: LoadedTx | null = loaded;
    if (loaded.tx.status === 'active' && untilDeadlineMs(loaded, this.clock) <= 0) {
      current = await this.applyDecision(loaded, { type: 'deadline_passed' });
      if (current && current.tx.status !== loaded.tx.status) forTransaction(this.logger, loaded.tx.gid).log('timed out: rolling back');
    }
    if (current) await this.drive(current, 'end');
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
    const delivered = ours ? await this.drive(decided, 'phase2').catch((error: unknown) => this.unlessLeaseLost(error, decided.tx.gid)) : null;
    if (delivered && isTerminal(delivered.tx.status)) return delivered;
    return this.waitForTerminal(decided.tx.gid);
  }

  /**
   * Writes a decision (commit, rollback, deadline) with compare-and-set and takes the lease for
   * phase 2. Returns the saved transaction, or null when another writer won the race.
   */
  private async applyDecision(loaded: LoadedTx, event: DecisionEvent, commitResult?: Json): Promise<LoadedTx | null> {
    const before = machineOf(loaded, this.modes.get(loaded.tx.mode));
    const result = transition(before, event);
    if (!result.ok || !result.changed) return loaded;
    const saved = await this.writer.write(loaded, {
      status: result.tx.status,
      reason: result.tx.reason,
      attempts: 0,
      ...this.round.schedule({ kind: 'now' }, loaded.tx),
      branches: stoppedWaiting(before, result.tx),
      events: [{ type: 'status', from: loaded.tx.status, to: result.tx.status, detail: { reason: result.tx.reason, cause: event.type } }],
      // A workflow's result is kept with its commit decision, and only with one (PROTOCOL.md 3.7).
      ...(commitResult !== undefined && result.tx.status === 'committing' ? { result: commitResult } : {}),
    });
    if (saved) {
      crashPoint('after_decision', loaded.tx.gid);
      if (debugLogged()) forTransaction(this.logger, loaded.tx.gid).debug(`decided: ${saved.tx.status}`, {
        status: saved.tx.status,
        reason: saved.tx.reason,
        cause: event.type,
      });
    }
    return saved;
  }

  /**
   * Drives a transaction this instance holds, wave after wave as its mode chooses them (phase 1
   * of a one-shot, a saga's forward steps, msg's check-back, phase 2 all at once or in
   * dependency order), each through the round. Stops at `reach`, when a wave must wait for its
   * retry, or when the mode has nothing to call now. Returns null when another instance took
   * the transaction (a write fenced off).
   */
  private async drive(loaded: LoadedTx, reach: Reach): Promise<LoadedTx | null> {
    let current = loaded;
    for (;;) {
      const { tx } = current;
      if (isTerminal(tx.status) || (tx.status === 'active' ? reach === 'phase2' : reach === 'decision')) return current;
      const mode = this.modes.get(tx.mode);
      const step = tx.status === 'active' ? mode.nextActive(current) : mode.nextDecided(current);
      if (step === null) return current;
      if (isPostponed(step)) return (await this.round.postpone(current, step.postponedMs)) ?? current;
      const { saved, continues } = await this.round.run(current, machineOf(current, mode), step);
      if (!saved) return null;
      current = saved;
      if (!continues) return current;
    }
  }

  /** Phase 2 in the background, after the decision was answered. */
  private deliverInBackground(loaded: LoadedTx): void {
    this.drive(loaded, 'phase2').catch((error: unknown) => this.backgroundFailed(loaded.tx.gid, 'phase-2 delivery', error));
  }

  /** On to the end in the background, as after an answer (`work` names what came before, for the log). */
  private driveInBackground(loaded: LoadedTx, work: string): void {
    this.drive(loaded, 'end').catch((error: unknown) => this.backgroundFailed(loaded.tx.gid, `driving on after a ${work}`, error));
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

/** A workflow step recorded pending whose participant's answer was never written (nor held here): a branch step not waiting, never answered. */
function neverAnswered(step: BranchRecord): boolean {
  return step.status === 'pending' && step.attempts === 0 && step.waitingSince === null && step.kind !== null && step.kind !== 'local';
}

/** The branches a decision ends the wait of (a new phase begins for them): their wait cleared in the same write. */
function stoppedWaiting(before: MachineTx, after: MachineTx): BranchChange[] {
  const waitsAfter = waitingIn(after);
  return before.branches.filter((b) => b.waiting && !waitsAfter(b.branchId)).map((b) => ({ branchId: b.branchId, calls: 0, waiting: false }));
}
