import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  ErrorCode,
  LIMITS,
  type AddBranchDto,
  type BeginTransactionDto,
  type BranchOutcomeView,
  type Json,
  type RecordStepDto,
  type PendingBranchView,
  type ReportOutcomeDto,
  type TraceContextHeaders,
  type TransactionView,
} from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { TransactionEngine, type ReporterScope, type RequestedDecision, type TxScope } from '../engine/transaction-engine.service.js';
import type { ApiKey } from '../auth/api-keys.js';
import type { StepRequest } from '../engine/processors/mode-processor.js';
import type { BranchRecord, NewBranch } from '../store/records.js';
import { beginTrace, begun, inBeginTrace } from '../telemetry/tracing.js';
import { asApiError } from '../api/engine-errors.js';
import { toTransactionView } from '../api/transaction.view.js';

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

/**
 * The client API's use cases (PROTOCOL.md 3), thin over the engine: shapes each request into
 * what the engine takes (a begin request with its hash, trace context and key; a branch), and
 * words the engine's answers and refusals as the API's. What a mode makes of a request is the
 * mode's (engine/processors).
 */
@Injectable()
export class TransactionsService {
  constructor(
    private readonly engine: TransactionEngine,
    private readonly config: CoordinatorConfig,
  ) {}

  /**
   * `incoming`: the client's W3C trace context. Tracing off, its traceparent is kept with the
   * transaction when well formed (an invalid one is ignored, as W3C asks); on, the transaction's
   * span is its child and the transaction keeps the span's (telemetry/tracing.ts).
   */
  async begin(dto: BeginTransactionDto, incoming: TraceContextHeaders, key?: ApiKey): Promise<BeginResult> {
    const gid = dto.gid ?? randomUUID();
    const { wait: _wait, ...request } = dto;
    const requestHash = createHash('sha256').update(canonical({ ...request, gid })).digest('hex');
    const wait = dto.wait ?? false;
    const trace = beginTrace(dto.mode, incoming);
    const { created, loaded } = await inBeginTrace(trace, () => this.engine
      .begin(
        {
          mode: dto.mode,
          gid,
          gidChosen: dto.gid !== undefined,
          timeoutMs: dto.timeoutMs ?? LIMITS.defaultTimeoutMs,
          metadata: dto.metadata ?? {},
          requestHash,
          traceParent: trace.traceParent,
          // Recorded whenever keys are configured, so turning OWNER_SCOPED_KEYS on later scopes these too.
          ownerKeyDigest: this.config.apiKeys.enabled && key ? key.digest : null,
          branches: dto.branches,
          steps: dto.steps,
          check: dto.check,
          submit: dto.submit,
          concurrent: dto.concurrent,
          workflow: dto.workflow,
          input: dto.input,
        },
        wait,
      ))
      .then(
        (answer) => {
          begun(trace, gid, { created: answer.created, status: answer.loaded.tx.status });
          return answer;
        },
        (error: unknown) => {
          begun(trace, gid, { error });
          return rethrowAsApiError(error);
        },
      );
    if (created) return { created, view: toTransactionView(loaded) };
    // Another key's gid: a conflict, worded as any other, so the answer tells nothing of its body.
    if (loaded.tx.requestHash !== requestHash || !this.engine.visibleTo(loaded.tx, this.scopeOf(key))) {
      throw new ApiError(409, ErrorCode.GID_CONFLICT, `gid ${gid} already names a different transaction`, { field: 'gid' });
    }
    return { created, view: toTransactionView(wait ? await this.engine.waitForTerminal(gid) : loaded) };
  }

  /**
   * Which transactions a key may use: with OWNER_SCOPED_KEYS, a client key only those it began
   * (null: all of them, for admin keys, or when scoping is off or there are no keys).
   */
  private scopeOf(key: ApiKey | undefined): TxScope {
    if (!this.config.ownerScopedKeys || !key || key.roles.has('admin')) return null;
    return key.digest;
  }

  /**
   * Who may report a participant's outcomes: with API keys, the key that owns the participant's
   * name (PROTOCOL.md 3.6, 4), so the key's digest; null (anyone) for admin keys and without keys.
   */
  private reporterOf(key: ApiKey | undefined): ReporterScope {
    if (!this.config.apiKeys.enabled || !key || key.roles.has('admin')) return null;
    return key.digest;
  }

  /** A participant's report of a phase's final answer (PROTOCOL.md 3.6): the transaction after it (a repeat: as it is). */
  async reportOutcome(gid: string, branchId: string, dto: ReportOutcomeDto, key?: ApiKey): Promise<TransactionView> {
    const report = { phase: dto.phase, outcome: dto.outcome, result: dto.result ?? null };
    return toTransactionView(await this.engine.reportOutcome(gid, branchId, report, this.reporterOf(key)).catch(rethrowAsApiError));
  }

  /** PROTOCOL.md 3.2; a phase 1 answered `202` is pending (3.6): answered `202` too. */
  async addBranch(gid: string, dto: AddBranchDto, key?: ApiKey): Promise<BranchOutcomeView | PendingBranchView> {
    const branch: NewBranch = { branchId: dto.branchId ?? `b-${randomUUID()}`, participant: dto.participant, action: dto.action, payload: dto.payload ?? {} };
    const recorded = await this.engine.addBranch(gid, branch, this.scopeOf(key)).catch(rethrowAsApiError);
    // Participant names are case-insensitive: the branch holds the registered spelling.
    if (recorded.participant.toLowerCase() !== dto.participant.toLowerCase() || recorded.action !== dto.action) {
      throw new ApiError(409, ErrorCode.BRANCH_CONFLICT, `branch ${recorded.branchId} already exists for ${recorded.participant}/${recorded.action}`, {
        field: 'branchId',
      });
    }
    return phase1Answer(recorded);
  }

  /** A workflow's step (PROTOCOL.md 3.7), answered as an added branch is (3.2): pending while its participant answers long-running (3.6). */
  async recordStep(gid: string, dto: RecordStepDto, key?: ApiKey): Promise<BranchOutcomeView | PendingBranchView> {
    const recorded = await this.engine.recordStep(gid, stepRequestOf(dto), this.scopeOf(key)).catch(rethrowAsApiError);
    return phase1Answer(recorded);
  }

  /** `result`: a workflow's, kept with the commit (PROTOCOL.md 3.7). */
  commit(gid: string, wait: boolean, key?: ApiKey, result?: Json): Promise<TransactionView> {
    return this.decide(gid, { type: 'commit_requested' }, wait, key, result);
  }

  rollback(gid: string, wait: boolean, key?: ApiKey): Promise<TransactionView> {
    return this.decide(gid, { type: 'rollback_requested', reason: 'client' }, wait, key);
  }

  async get(gid: string, key?: ApiKey): Promise<TransactionView> {
    return toTransactionView(await this.engine.get(gid, this.scopeOf(key)).catch(rethrowAsApiError));
  }

  private async decide(gid: string, event: RequestedDecision, wait: boolean, key: ApiKey | undefined, result?: Json): Promise<TransactionView> {
    const { loaded, cannotCommit } = await this.engine.decide(gid, event, wait, this.scopeOf(key), result).catch(rethrowAsApiError);
    const view = toTransactionView(loaded);
    if (cannotCommit) {
      throw new ApiError(409, ErrorCode.CANNOT_COMMIT, 'a branch is failed or pending: the transaction was rolled back', { transaction: view });
    }
    return view;
  }
}

/** A recorded branch (or step) as the answer to its add (PROTOCOL.md 3.2, 3.6, 3.7): its phase-1 outcome. */
function phase1Answer(branch: BranchRecord): BranchOutcomeView | PendingBranchView {
  if (branch.status === 'failed') {
    throw new ApiError(409, ErrorCode.BRANCH_FAILED, `branch ${branch.branchId} was refused by ${branch.participant}`, {
      branchId: branch.branchId,
      status: 'failed',
      lastError: branch.lastError,
    });
  }
  // Accepted, outcome not known yet (3.6): the client reads the transaction until it is known.
  if (branch.status === 'pending' && branch.waitingSince !== null) return { branchId: branch.branchId, status: 'pending' };
  if (branch.status === 'pending') {
    throw new ApiError(502, ErrorCode.BRANCH_UNKNOWN, `no answer from ${branch.participant}: outcome unknown, roll back`, {
      branchId: branch.branchId,
      status: 'pending',
      lastError: branch.lastError,
    });
  }
  return { branchId: branch.branchId, status: branch.status, result: branch.result };
}

/**
 * A step as the engine takes it: a branch step names its participant, action and payload, a
 * local step its result and perhaps its compensation; what belongs to the other kind is refused,
 * naming the field.
 */
function stepRequestOf(dto: RecordStepDto): StepRequest {
  const refuse = (field: string, why: string): never => {
    throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `${field} ${why}`, { field });
  };
  if (dto.kind === 'local') {
    for (const field of ['participant', 'action', 'payload'] as const) {
      if (dto[field] !== undefined) refuse(field, "is not for a local step: it ran in the workflow's host");
    }
    if (dto.result === undefined) refuse('result', 'is required for a local step: what its code returned');
    const { compensate } = dto;
    return {
      stepId: dto.stepId,
      kind: 'local',
      result: dto.result ?? null,
      compensate: compensate ? { participant: compensate.participant, action: compensate.action, payload: compensate.payload ?? {} } : null,
    };
  }
  if (dto.result !== undefined) refuse('result', `is only for a local step: a ${dto.kind} step's result is its participant's answer`);
  if (dto.compensate !== undefined) refuse('compensate', `is only for a local step: a ${dto.kind} step is undone by its participant's own rollback phase`);
  const participant = dto.participant ?? refuse('participant', `is required for a ${dto.kind} step`);
  const action = dto.action ?? refuse('action', `is required for a ${dto.kind} step`);
  return { stepId: dto.stepId, kind: dto.kind, participant, action, payload: dto.payload ?? {} };
}

function rethrowAsApiError(error: unknown): never {
  throw asApiError(error);
}
