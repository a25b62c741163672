import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  ErrorCode,
  LIMITS,
  MSG_CHECK_BRANCH_ID,
  type AddBranchDto,
  type BeginTransactionDto,
  type BranchOutcomeView,
  type JsonObject,
  type TransactionView,
} from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { describeDagProblem, effectiveDependencies, findDagProblem } from '../engine/saga-dag.js';
import { TransactionEngine, type RequestedDecision, type TxScope } from '../engine/transaction-engine.service.js';
import type { ApiKey } from '../auth/api-keys.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { ParticipantsService } from '../participants/participants.service.js';
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
 * what the engine takes (branches, request hash, trace context), and words the engine's answers
 * and refusals as the API's.
 */
@Injectable()
export class TransactionsService {
  constructor(
    private readonly engine: TransactionEngine,
    private readonly participants: ParticipantsService,
    private readonly config: CoordinatorConfig,
    private readonly gates: ParticipantGates,
  ) {}

  /** `traceparent`: the client's W3C trace context, kept with the transaction when well formed (an invalid one is ignored, as W3C asks). */
  async begin(dto: BeginTransactionDto, traceparent?: string, key?: ApiKey): Promise<BeginResult> {
    this.engine.checkMode(dto.mode);
    this.checkMsgFields(dto);
    this.checkBranchCount(dto);
    const named = dto.mode === 'saga' ? this.sagaSteps(dto) : this.oneShotBranches(dto);
    const branches: NewBranch[] = [];
    for (const [i, b] of named.entries()) {
      const participant = await this.participants.resolve(b.participant, b.action, dto.mode, dto.mode === 'saga' ? `steps.${i}` : `branches.${i}`);
      // The registered spelling (names are case-insensitive), so every branch on it names it alike.
      branches.push({ ...b, participant: participant.name });
    }
    let check = dto.check ? { participant: dto.check.participant, action: dto.check.action } : undefined;
    if (check) {
      const checked = await this.participants.resolve(check.participant, check.action, 'msg', 'check');
      check = { participant: checked.name, action: check.action };
      // A publish target answers nothing, so it cannot tell whether a message's local transaction
      // committed: publishing the check would read as "committed" and deliver what may never have been.
      if (checked.publish) {
        throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `participant ${checked.name} is a publish target: it gets no reply, so it cannot answer the check`, {
          field: 'check.participant',
        });
      }
    }

    // Admission control: refused while the participants it names (or this instance) have more
    // calls waiting than admitted work may add to, before anything is written.
    // A begin sent again for a transaction that exists adds no work: it is answered as always.
    const refusal = this.gates.admissionRefusal(check ? [...branches.map((b) => b.participant), check.participant] : branches.map((b) => b.participant));
    if (refusal && !(dto.gid !== undefined && (await this.engine.exists(dto.gid)))) {
      this.gates.countAdmission('refused');
      throw new ApiError(503, ErrorCode.OVERLOADED, `${refusal.reason}; try again in ${refusal.retryAfterSeconds} s`, { retryAfterSeconds: refusal.retryAfterSeconds });
    }
    this.gates.countAdmission('admitted');

    const gid = dto.gid ?? randomUUID();
    const timeoutMs = dto.timeoutMs ?? LIMITS.defaultTimeoutMs;
    const metadata: JsonObject = dto.metadata ?? {};
    const { wait: _wait, ...request } = dto;
    const requestHash = createHash('sha256').update(canonical({ ...request, gid })).digest('hex');
    const isMsg = dto.mode === 'msg';
    // A message is driven at once only when submitted at begin; otherwise it waits for the caller's commit.
    const oneShot = isMsg ? dto.submit === true : branches.length > 0;
    const wait = dto.wait ?? false;
    const status = isMsg && oneShot ? 'committing' : 'active';

    const { created, loaded } = await this.engine
      .create(
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
          traceParent: traceparent && TRACEPARENT.test(traceparent) ? traceparent : null,
          ...(check ? { check } : {}),
          // Recorded whenever keys are configured, so turning OWNER_SCOPED_KEYS on later scopes these too.
          ownerKeyDigest: this.config.apiKeys.enabled && key ? key.digest : null,
          status,
          // A message's branches wait for nothing but the commit.
          branchStatus: isMsg ? 'prepared' : 'pending',
          // A saga is resumed where it was if its driver dies, and so is a submitted message's
          // delivery; tcc/2pc are rolled back at their deadline, and a prepared message is checked then.
          firstAttemptInMs: dto.mode === 'saga' || status === 'committing' ? Math.min(this.config.env.LEASE_MS, timeoutMs) : timeoutMs,
          events: [
            { type: 'created', to: status, detail: { mode: dto.mode, oneShot, timeoutMs } },
            ...branches.map((b) => ({
              type: 'branch_added',
              branchId: b.branchId,
              to: isMsg ? 'prepared' : 'pending',
              detail: { participant: b.participant, action: b.action },
            })),
          ],
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

  /** MAX_BRANCHES_PER_TRANSACTION at begin, as a 400 naming the field (the same limit holds for adds). */
  private checkBranchCount(dto: BeginTransactionDto): void {
    const limit = this.config.env.MAX_BRANCHES_PER_TRANSACTION;
    for (const field of ['branches', 'steps'] as const) {
      const count = dto[field]?.length ?? 0;
      if (count > limit) {
        throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `${field} must contain no more than ${limit} elements (MAX_BRANCHES_PER_TRANSACTION)`, { field });
      }
    }
  }

  /** `check` and `submit` belong to msg, which needs `branches` and `check` (PROTOCOL.md 3.1). */
  private checkMsgFields(dto: BeginTransactionDto): void {
    if (dto.mode !== 'msg') {
      if (dto.check) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'check is only for mode msg', { field: 'check' });
      if (dto.submit !== undefined) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'submit is only for mode msg', { field: 'submit' });
      return;
    }
    if (!dto.branches) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'branches is required for mode msg', { field: 'branches' });
    if (!dto.check) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'check is required for mode msg', { field: 'check' });
    for (const [i, b] of dto.branches.entries()) {
      if (b.branchId === MSG_CHECK_BRANCH_ID) {
        throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `branches.${i}.branchId ${MSG_CHECK_BRANCH_ID} is reserved in mode msg for the check-back`, {
          field: `branches.${i}.branchId`,
        });
      }
    }
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

  async addBranch(gid: string, dto: AddBranchDto, key?: ApiKey): Promise<BranchOutcomeView> {
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

  /** A recorded branch as the answer to an add-branch request (PROTOCOL.md 3.2). */
  private outcomeOf(branch: BranchRecord, dto: AddBranchDto): BranchOutcomeView {
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
