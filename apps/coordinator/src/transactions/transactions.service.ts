import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  ErrorCode,
  LIMITS,
  type AddBranchDto,
  type BeginTransactionDto,
  type BranchOutcomeView,
  type PendingBranchView,
  type ReportOutcomeDto,
  type TransactionView,
} from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { TransactionEngine, type ReporterScope, type RequestedDecision, type TxScope } from '../engine/transaction-engine.service.js';
import type { ApiKey } from '../auth/api-keys.js';
import type { BranchRecord, NewBranch } from '../store/records.js';
import { asApiError } from '../api/engine-errors.js';
import { toTransactionView } from '../api/transaction.view.js';

/** W3C trace context, version 00: version-traceid-parentid-flags. */
const TRACEPARENT = /^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

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

  /** `traceparent`: the client's W3C trace context, kept with the transaction when well formed (an invalid one is ignored, as W3C asks). */
  async begin(dto: BeginTransactionDto, traceparent?: string, key?: ApiKey): Promise<BeginResult> {
    const gid = dto.gid ?? randomUUID();
    const { wait: _wait, ...request } = dto;
    const requestHash = createHash('sha256').update(canonical({ ...request, gid })).digest('hex');
    const wait = dto.wait ?? false;
    const { created, loaded } = await this.engine
      .begin(
        {
          mode: dto.mode,
          gid,
          gidChosen: dto.gid !== undefined,
          timeoutMs: dto.timeoutMs ?? LIMITS.defaultTimeoutMs,
          metadata: dto.metadata ?? {},
          requestHash,
          traceParent: traceparent && TRACEPARENT.test(traceparent) ? traceparent : null,
          // Recorded whenever keys are configured, so turning OWNER_SCOPED_KEYS on later scopes these too.
          ownerKeyDigest: this.config.apiKeys.enabled && key ? key.digest : null,
          branches: dto.branches,
          steps: dto.steps,
          check: dto.check,
          submit: dto.submit,
          concurrent: dto.concurrent,
        },
        wait,
      )
      .catch(rethrowAsApiError);
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
    return this.outcomeOf(recorded, dto);
  }

  commit(gid: string, wait: boolean, key?: ApiKey): Promise<TransactionView> {
    return this.decide(gid, { type: 'commit_requested' }, wait, key);
  }

  rollback(gid: string, wait: boolean, key?: ApiKey): Promise<TransactionView> {
    return this.decide(gid, { type: 'rollback_requested', reason: 'client' }, wait, key);
  }

  async get(gid: string, key?: ApiKey): Promise<TransactionView> {
    return toTransactionView(await this.engine.get(gid, this.scopeOf(key)).catch(rethrowAsApiError));
  }

  private async decide(gid: string, event: RequestedDecision, wait: boolean, key: ApiKey | undefined): Promise<TransactionView> {
    const { loaded, cannotCommit } = await this.engine.decide(gid, event, wait, this.scopeOf(key)).catch(rethrowAsApiError);
    const view = toTransactionView(loaded);
    if (cannotCommit) {
      throw new ApiError(409, ErrorCode.CANNOT_COMMIT, 'a branch is failed or pending: the transaction was rolled back', { transaction: view });
    }
    return view;
  }

  /** A recorded branch as the answer to an add-branch request (PROTOCOL.md 3.2, 3.6). */
  private outcomeOf(branch: BranchRecord, dto: AddBranchDto): BranchOutcomeView | PendingBranchView {
    // Participant names are case-insensitive: the branch holds the registered spelling.
    if (branch.participant.toLowerCase() !== dto.participant.toLowerCase() || branch.action !== dto.action) {
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
}

function rethrowAsApiError(error: unknown): never {
  throw asApiError(error);
}
