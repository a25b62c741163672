import { createHash, randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import {
  ErrorCode,
  LIMITS,
  isTerminal,
  type AddBranchDto,
  type BeginTransactionDto,
  type BranchOutcomeView,
  type JsonObject,
  type TransactionView,
} from '@app/protocol';
import { ApiError } from '../common/api-error.js';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { crashPoint } from '../engine/crash-points.js';
import { ModeProcessors } from '../engine/processors/mode-processors.js';
import { describeDagProblem, effectiveDependencies, findDagProblem } from '../engine/saga-dag.js';
import { transition } from '../engine/state-machine.js';
import { BranchCaller, LeaseLostError } from '../engine/branch-caller.js';
import { TransactionEngine } from '../engine/transaction-engine.service.js';
import { machineOf } from '../engine/transaction-writer.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { ParticipantsService } from '../participants/participants.service.js';
import { TransactionStore, type LoadedTx, type NewBranch } from './transaction.store.js';
import { toTransactionView } from './transaction.view.js';

/** W3C trace context, version 00: version-traceid-parentid-flags. */
const TRACEPARENT = /^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Deterministic JSON (sorted keys), so equal requests hash equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export interface BeginResult {
  created: boolean;
  view: TransactionView;
}

/** The client API's use cases (PROTOCOL.md 3): thin over the engine and the store. */
@Injectable()
export class TransactionsService {
  private readonly logger = new Logger(TransactionsService.name);

  constructor(
    private readonly store: TransactionStore,
    private readonly engine: TransactionEngine,
    private readonly caller: BranchCaller,
    private readonly processors: ModeProcessors,
    private readonly participants: ParticipantsService,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** `traceparent`: the client's W3C trace context, kept with the transaction when well formed (an invalid one is ignored, as W3C asks). */
  async begin(dto: BeginTransactionDto, traceparent?: string): Promise<BeginResult> {
    this.processors.get(dto.mode);
    const branches = dto.mode === 'saga' ? this.sagaSteps(dto) : this.oneShotBranches(dto);
    for (const [i, b] of branches.entries()) {
      await this.participants.resolve(b.participant, b.action, dto.mode, dto.mode === 'saga' ? `steps.${i}` : `branches.${i}`);
    }

    const gid = dto.gid ?? randomUUID();
    const timeoutMs = dto.timeoutMs ?? LIMITS.defaultTimeoutMs;
    const metadata: JsonObject = dto.metadata ?? {};
    const { wait: _wait, ...request } = dto;
    const requestHash = createHash('sha256').update(canonical({ ...request, gid })).digest('hex');
    const oneShot = branches.length > 0;

    const startedAt = Date.now();
    const inserted = await this.store.insert(
      {
        gid,
        mode: dto.mode,
        oneShot,
        concurrent: dto.concurrent ?? false,
        requestHash,
        metadata,
        timeoutMs,
        branches,
        leaseOwner: oneShot ? this.engine.instanceId : null,
        // A saga is resumed where it was if its driver dies; tcc/2pc are rolled back at their deadline.
        traceParent: traceparent && TRACEPARENT.test(traceparent) ? traceparent : null,
        firstAttemptInMs: dto.mode === 'saga' ? Math.min(this.config.env.LEASE_MS, timeoutMs) : timeoutMs,
        events: [
          { type: 'created', to: 'active', detail: { mode: dto.mode, oneShot, timeoutMs } },
          ...branches.map((b) => ({ type: 'branch_added', branchId: b.branchId, to: 'pending', detail: { participant: b.participant, action: b.action } })),
        ],
      },
      this.config.env.LEASE_MS,
    );
    if (!inserted) {
      const existing = await this.store.load(gid);
      if (!existing || existing.tx.requestHash !== requestHash) {
        throw new ApiError(409, ErrorCode.GID_CONFLICT, `gid ${gid} already names a different transaction`, { field: 'gid' });
      }
      return { created: false, view: dto.wait ? await this.waitForTerminal(gid) : toTransactionView(existing) };
    }
    this.metrics.begun.inc({ mode: dto.mode });
    // Later moves are published by the engine's writer; this one lets the console show the new row at once.
    this.bus.publish({ kind: 'tx', gid, status: 'active' });
    crashPoint('after_begin', gid);
    forTransaction(this.logger, gid).debug(`begun: ${dto.mode}, ${oneShot ? `${branches.length} branch(es)` : 'interactive'}`, {
      mode: dto.mode,
      branches: branches.length,
    });
    if (!oneShot) return { created: true, view: toTransactionView(inserted) };
    inserted.heldUntil = startedAt + this.config.env.LEASE_MS;
    if (dto.mode === 'saga' && !dto.wait) {
      // A saga may take long: answer once it is durable and run its steps in the background.
      this.engine
        .start(inserted)
        .then((started) => this.afterDecision(started, false))
        .catch((error: unknown) => forTransaction(this.logger, gid).error(`saga run failed: ${String(error)}; recovery will resume it`));
      return { created: true, view: toTransactionView(inserted) };
    }
    const decided = await this.engine.start(inserted).catch((error: unknown) => this.unlessLeaseLost(error, gid));
    return { created: true, view: await this.afterDecision(decided, dto.wait ?? false) };
  }

  private oneShotBranches(dto: BeginTransactionDto): NewBranch[] {
    if (dto.steps) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'steps is only for mode saga', { field: 'steps' });
    const branches = (dto.branches ?? []).map((b, i) => ({
      branchId: b.branchId ?? `b${i + 1}`,
      participant: b.participant,
      action: b.action,
      payload: b.payload ?? {},
    }));
    const seen = new Set<string>();
    for (const [i, b] of branches.entries()) {
      if (seen.has(b.branchId)) {
        throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `branches.${i}.branchId ${b.branchId} is used twice`, {
          field: `branches.${i}.branchId`,
        });
      }
      seen.add(b.branchId);
    }
    return branches;
  }

  /** Saga steps become branches named after the step, with their effective dependencies. */
  private sagaSteps(dto: BeginTransactionDto): NewBranch[] {
    if (dto.branches) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'mode saga takes steps, not branches', { field: 'branches' });
    const steps = dto.steps;
    if (!steps) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'steps is required for mode saga', { field: 'steps' });
    const declared = steps.map((s) => ({ name: s.name, dependsOn: s.dependsOn ?? [] }));
    const problem = findDagProblem(declared);
    if (problem) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, describeDagProblem(problem), { field: 'steps' });
    const effective = effectiveDependencies(steps, dto.concurrent ?? false);
    return steps.map((step, i) => ({
      branchId: step.name,
      participant: step.participant,
      action: step.action,
      payload: step.payload ?? {},
      dependsOn: [...effective[i].dependsOn],
    }));
  }

  async addBranch(gid: string, dto: AddBranchDto): Promise<BranchOutcomeView> {
    const loaded = await this.requireTx(gid);
    const processor = this.processors.get(loaded.tx.mode);
    const branchId = dto.branchId ?? `b-${randomUUID()}`;
    const recorded = loaded.branches.find((b) => b.branchId === branchId);
    if (recorded) return this.recordedOutcome(recorded, dto);

    const allowed = transition(machineOf(loaded), { type: 'branch_added', branchId });
    if (!allowed.ok) throw this.refusal(allowed.error, loaded);
    await this.participants.resolve(dto.participant, dto.action, loaded.tx.mode, '');

    const branch: NewBranch = { branchId, participant: dto.participant, action: dto.action, payload: dto.payload ?? {} };
    const inserted = await this.store.insertBranch(gid, branch, [
      { type: 'branch_added', branchId, to: 'pending', detail: { participant: dto.participant, action: dto.action } },
    ]);
    if (!inserted) {
      const now = await this.requireTx(gid);
      const raced = now.branches.find((b) => b.branchId === branchId);
      if (raced) return this.recordedOutcome(raced, dto);
      throw this.refusal(ErrorCode.TX_NOT_ACTIVE, now);
    }

    crashPoint('after_branch_recorded', gid);
    const phase = processor.phases.phase1;
    const outcome = await this.caller.call(loaded, inserted, phase);
    const status = outcome.kind === 'ok' ? 'prepared' : outcome.kind === 'failed' ? 'failed' : 'pending';
    const saved = await this.store.recordPhase1(
      gid,
      branchId,
      status,
      outcome.kind === 'ok' ? { result: outcome.result } : { lastError: outcome.error },
      [
        {
          type: 'call',
          branchId,
          from: 'pending',
          to: status,
          detail: { participant: dto.participant, action: dto.action, phase, outcome: outcome.kind, attempt: 1, ...(outcome.kind === 'ok' ? {} : { error: outcome.error }) },
        },
      ],
    );
    return this.recordedOutcome(saved ?? { ...inserted, status }, dto);
  }

  async commit(gid: string, wait: boolean): Promise<TransactionView> {
    return this.decide(gid, { type: 'commit_requested' }, wait);
  }

  async rollback(gid: string, wait: boolean): Promise<TransactionView> {
    return this.decide(gid, { type: 'rollback_requested', reason: 'client' }, wait);
  }

  async get(gid: string): Promise<TransactionView> {
    return toTransactionView(await this.requireTx(gid));
  }

  /**
   * Resolves when the transaction is terminal or `WAIT_MAX_MS` passed. Woken by the bus (this or
   * another instance finishing it) and, should a message be lost, by polling the store.
   */
  async waitForTerminal(gid: string): Promise<TransactionView> {
    const deadline = Date.now() + this.config.env.WAIT_MAX_MS;
    let wake: (() => void) | null = null;
    const unsubscribe = this.bus.subscribe((message) => {
      if (message.kind === 'tx' && message.gid === gid && isTerminal(message.status)) wake?.();
    });
    try {
      for (;;) {
        const loaded = await this.requireTx(gid);
        const remaining = deadline - Date.now();
        if (isTerminal(loaded.tx.status) || remaining <= 0) return toTransactionView(loaded);
        await new Promise<void>((resolve) => {
          wake = resolve;
          void sleep(Math.min(this.config.env.WAIT_POLL_MS, remaining)).then(resolve);
        });
      }
    } finally {
      unsubscribe();
    }
  }

  private async decide(
    gid: string,
    event: { type: 'commit_requested' } | { type: 'rollback_requested'; reason: 'client' },
    wait: boolean,
  ): Promise<TransactionView> {
    // A concurrent writer (a branch added, a timeout) makes the compare-and-set fail: read again.
    for (let attempt = 0; attempt < 10; attempt++) {
      const loaded = await this.requireTx(gid);
      const result = transition(machineOf(loaded), event);
      if (!result.ok) throw this.refusal(result.error, loaded);
      if (!result.changed) return wait ? this.waitForTerminal(gid) : toTransactionView(loaded);
      const decided = await this.engine.decide(loaded, event);
      if (!decided) continue;
      const view = await this.afterDecision(decided, wait);
      if (result.error === ErrorCode.CANNOT_COMMIT) {
        throw new ApiError(409, ErrorCode.CANNOT_COMMIT, 'a branch is failed or pending: the transaction was rolled back', {
          transaction: view,
        });
      }
      return view;
    }
    throw new ApiError(409, ErrorCode.TX_NOT_ACTIVE, `transaction ${gid} is changing too fast; try again`);
  }

  /** Phase 2 after a durable decision: inline when the client waits, in the background otherwise. */
  private async afterDecision(decided: LoadedTx, wait: boolean): Promise<TransactionView> {
    const ours = decided.tx.leaseOwner === this.engine.instanceId;
    if (!wait) {
      if (ours) this.engine.deliverInBackground(decided);
      return toTransactionView(decided);
    }
    const delivered = ours
      ? await this.engine.deliverPhase2(decided).catch((error: unknown) => this.unlessLeaseLost(error, decided.tx.gid))
      : null;
    if (delivered && isTerminal(delivered.tx.status)) return toTransactionView(delivered);
    return this.waitForTerminal(decided.tx.gid);
  }

  /** A lease lost mid-way is not an error for the client: another instance finishes the work. */
  private async unlessLeaseLost(error: unknown, gid: string): Promise<LoadedTx> {
    if (!(error instanceof LeaseLostError)) throw error;
    forTransaction(this.logger, error.gid).warn(error.message);
    return this.requireTx(gid);
  }

  private recordedOutcome(branch: { branchId: string; status: BranchOutcomeView['status']; result: BranchOutcomeView['result']; lastError: unknown; participant: string; action: string }, dto: AddBranchDto): BranchOutcomeView {
    if (branch.participant !== dto.participant || branch.action !== dto.action) {
      throw new ApiError(409, ErrorCode.BRANCH_CONFLICT, `branch ${branch.branchId} already exists for ${branch.participant}/${branch.action}`, {
        field: 'branchId',
      });
    }
    if (branch.status === 'failed') {
      throw new ApiError(409, ErrorCode.BRANCH_FAILED, `branch ${branch.branchId} was refused by ${branch.participant}`, {
        branchId: branch.branchId,
        status: 'failed',
        lastError: branch.lastError,
      });
    }
    if (branch.status === 'pending') {
      throw new ApiError(502, ErrorCode.BRANCH_UNKNOWN, `no answer from ${branch.participant}: outcome unknown, roll back`, {
        branchId: branch.branchId,
        status: 'pending',
        lastError: branch.lastError,
      });
    }
    return { branchId: branch.branchId, status: branch.status, result: branch.result };
  }

  private refusal(code: ErrorCode, loaded: LoadedTx): ApiError {
    const view = toTransactionView(loaded);
    switch (code) {
      case ErrorCode.WRONG_MODE:
        return new ApiError(400, code, `not allowed on a ${loaded.tx.mode} transaction`);
      case ErrorCode.TX_NOT_ACTIVE:
        return new ApiError(409, code, `transaction ${loaded.tx.gid} is ${loaded.tx.status}`, { transaction: view });
      case ErrorCode.TX_ALREADY_DECIDED:
        return new ApiError(409, code, `transaction ${loaded.tx.gid} is already ${loaded.tx.status}`, { transaction: view });
      default:
        return new ApiError(409, code, `refused: ${code}`, { transaction: view });
    }
  }

  private async requireTx(gid: string): Promise<LoadedTx> {
    const loaded = await this.store.load(gid);
    if (!loaded) throw ApiError.notFound(gid);
    return loaded;
  }
}
