import { BRANCH_STATUSES, GLOBAL_STATUSES, MODES, ROLLBACK_REASONS, STEP_KINDS, type ErrorBody, type Json } from '@nest-dtx/protocol';
import { CoordinatorError } from '../client/coordinator-error.js';
import { CoordinatorHttp, type CoordinatorAnswer } from '../client/coordinator-http.js';
import type {
  DecisionAnswer,
  StepAnswer,
  StepRecordRequest,
  WorkflowBeginRequest,
  WorkflowCoordinator,
  WorkflowStepView,
  WorkflowView,
} from './workflow-coordinator.js';

export interface HttpWorkflowCoordinatorOptions {
  /** The coordinator, or several instances of it: a request that gets no answer from one goes to the next. */
  coordinatorUrl: string | readonly string[];
  apiKey?: string;
  /**
   * Per request. Default 60 s: a step's answer waits for its participant's phase 1, which the
   * coordinator bounds by its own call timeout (5 s by default).
   */
  timeoutMs?: number;
  /** How many times a request that got no answer, or `503 STORE_UNAVAILABLE`, is sent again (default 4), after 200 ms, 400 ms, ... */
  retries?: number;
  /** How long in all a request waits on `503 OVERLOADED` / `429 RATE_LIMITED` before the refusal is thrown. Default 60 s. */
  maxBackPressureWaitMs?: number;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const errorCodeOf = (body: unknown): string | null => (isObject(body) && typeof body.error === 'string' ? body.error : null);
const jsonOf = (value: unknown): Json => (value === undefined ? null : (value as Json));
const messageOf = (body: Record<string, unknown>, fallback: string): string => (typeof body.message === 'string' ? body.message : fallback);
const oneOf = <T extends string>(values: readonly T[], value: unknown): value is T => typeof value === 'string' && (values as readonly string[]).includes(value);

/** A transaction view (PROTOCOL.md 3.4, 3.7) checked for what the runner relies on; throws naming the first field that is not as the protocol says. */
export function readWorkflowView(value: unknown): WorkflowView {
  const fail = (field: string): never => {
    throw new Error(`the coordinator answered a transaction view whose ${field} is not as PROTOCOL.md 3.4/3.7 says`);
  };
  if (!isObject(value)) return fail('body');
  if (typeof value.gid !== 'string') fail('gid');
  if (!oneOf(MODES, value.mode)) fail('mode');
  if (!oneOf(GLOBAL_STATUSES, value.status)) fail('status');
  if (!Array.isArray(value.branches)) fail('branches');
  const branches = (value.branches as unknown[]).map((branch, index): WorkflowStepView => {
    if (!isObject(branch) || typeof branch.branchId !== 'string') return fail(`branches[${index}].branchId`);
    if (!oneOf(STEP_KINDS, branch.kind)) return fail(`branches[${index}].kind`);
    if (!oneOf(BRANCH_STATUSES, branch.status)) return fail(`branches[${index}].status`);
    return {
      branchId: branch.branchId,
      kind: branch.kind,
      participant: typeof branch.participant === 'string' ? branch.participant : null,
      action: typeof branch.action === 'string' ? branch.action : null,
      status: branch.status,
      result: jsonOf(branch.result),
      lastError: jsonOf(branch.lastError),
    };
  });
  return {
    gid: value.gid as string,
    mode: value.mode as WorkflowView['mode'],
    status: value.status as WorkflowView['status'],
    reason: oneOf(ROLLBACK_REASONS, value.reason) ? value.reason : null,
    input: jsonOf(value.input),
    result: jsonOf(value.result),
    branches,
  };
}

/**
 * The coordinator's REST API for workflows over HTTP (PROTOCOL.md 3.1, 3.3, 3.4, 3.7).
 *
 * Not built on TransactionClient: a step's answer is told by its status code (201 recorded, 202
 * long-running, 409 / 502 / 504 by error code), which TransactionClient does not hand back. Both
 * share CoordinatorHttp (failover, what is sent again), as safe here: a begin names its gid, a
 * step its stepId (the same stepId again returns the recorded outcome and calls no one), and
 * commit and rollback are idempotent (3.3).
 */
export class HttpWorkflowCoordinator implements WorkflowCoordinator {
  private readonly http: CoordinatorHttp;

  constructor(options: HttpWorkflowCoordinatorOptions) {
    const urls = typeof options.coordinatorUrl === 'string' ? [options.coordinatorUrl] : options.coordinatorUrl;
    this.http = new CoordinatorHttp({ ...options, retries: options.retries ?? Math.max(4, urls.length) });
  }

  async begin(request: WorkflowBeginRequest): Promise<{ created: boolean; view: WorkflowView }> {
    const answer = await this.http.request({ name: 'begin', gid: request.gid, mode: 'workflow' }, 'POST', '/v1/transactions', { mode: 'workflow', ...request });
    if (answer.status !== 200 && answer.status !== 201) throw this.unexpected(answer);
    return { created: answer.status === 201, view: readWorkflowView(answer.body) };
  }

  async recordStep(gid: string, step: StepRecordRequest): Promise<StepAnswer> {
    const answer = await this.http.request({ name: 'recordStep', gid }, 'POST', `${this.path(gid)}/steps`, step);
    const body = isObject(answer.body) ? answer.body : {};
    const code = errorCodeOf(answer.body);
    if (answer.status === 201) {
      return { kind: 'recorded', status: oneOf(BRANCH_STATUSES, body.status) ? body.status : 'prepared', result: jsonOf(body.result) };
    }
    if (answer.status === 202) {
      const inBody = Number.isSafeInteger(body.retryAfterMs) && (body.retryAfterMs as number) >= 0 ? (body.retryAfterMs as number) : null;
      return { kind: 'ongoing', retryAfterMs: inBody ?? answer.retryAfterMs };
    }
    if (answer.status === 409 && code === 'BRANCH_FAILED') return { kind: 'failed', lastError: jsonOf(body.lastError) };
    if ((answer.status === 502 || answer.status === 504) && code === 'BRANCH_UNKNOWN') return { kind: 'unknown', lastError: jsonOf(body.lastError) };
    if (answer.status === 409 && code === 'STEP_MISMATCH') return { kind: 'mismatch', message: messageOf(body, 'STEP_MISMATCH') };
    if (answer.status === 409 && code === 'TX_NOT_ACTIVE') return { kind: 'not_active', message: messageOf(body, 'TX_NOT_ACTIVE') };
    throw this.unexpected(answer);
  }

  async get(gid: string): Promise<WorkflowView> {
    const answer = await this.http.request({ name: 'get', gid }, 'GET', this.path(gid));
    if (answer.status !== 200) throw this.unexpected(answer);
    return readWorkflowView(answer.body);
  }

  commit(gid: string, result: Json | undefined): Promise<DecisionAnswer> {
    return this.decide(gid, 'commit', result === undefined ? {} : { result });
  }

  rollback(gid: string): Promise<DecisionAnswer> {
    return this.decide(gid, 'rollback', {});
  }

  private async decide(gid: string, decision: 'commit' | 'rollback', body: { result?: Json }): Promise<DecisionAnswer> {
    const answer = await this.http.request({ name: decision, gid }, 'POST', `${this.path(gid)}/${decision}`, body);
    if (answer.status === 200) {
      const status = isObject(answer.body) && oneOf(GLOBAL_STATUSES, answer.body.status) ? answer.body.status : decision === 'commit' ? 'committing' : 'rolling_back';
      return { kind: 'accepted', status };
    }
    const code = errorCodeOf(answer.body);
    if (answer.status === 409 && (code === 'CANNOT_COMMIT' || code === 'TX_ALREADY_DECIDED')) {
      return { kind: 'refused', code, message: messageOf(isObject(answer.body) ? answer.body : {}, code) };
    }
    throw this.unexpected(answer);
  }

  private path(gid: string): string {
    return `/v1/transactions/${encodeURIComponent(gid)}`;
  }

  /** An answer none of the callers expects, as the error the rest of the SDK throws for one. */
  private unexpected(answer: CoordinatorAnswer): CoordinatorError {
    const body = isObject(answer.body) && typeof answer.body.error === 'string' ? (answer.body as ErrorBody) : null;
    return new CoordinatorError(answer.status, body, body ? undefined : `coordinator answered ${answer.status}`, answer.retryAfterMs);
  }

}
