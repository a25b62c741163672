import { randomUUID } from 'node:crypto';
import type {
  BranchOutcomeView,
  ErrorBody,
  Json,
  JsonObject,
  Mode,
  Phase,
  ParticipantRegistrationView,
  ParticipantView,
  TransactionView,
} from '@nest-dtx/protocol';
import { CoordinatorError } from './coordinator-error.js';
import { CoordinatorHttp, type CoordinatorOperation } from './coordinator-http.js';
import { MsgBuilder, type MsgCheckTarget, type MsgOptions } from './msg-builder.js';

export interface TransactionClientOptions {
  /**
   * The coordinator, or several instances of it: a request that gets no answer from one (or
   * `STORE_UNAVAILABLE`) is sent again to the next one in the list.
   */
  coordinatorUrl: string | readonly string[];
  apiKey?: string;
  /** Per-request timeout. Default 60 s (a `wait` may hold the answer up to the coordinator's limit). */
  timeoutMs?: number;
  /**
   * How many times a request that got no answer, or `503 STORE_UNAVAILABLE`, is sent again
   * (default 2, or the number of coordinator URLs if more), after 200 ms, 400 ms, ... Safe because every request is idempotent: the client
   * names each transaction (`gid`) and each added branch (`branchId`) itself when the caller
   * does not, so a resent begin or branch finds the first one instead of making a second.
   */
  retries?: number;
  /**
   * How long in all a request may wait on answers asking it to come back later (`503 OVERLOADED`,
   * `429 RATE_LIMITED`): each is sent again after its Retry-After (plus up to a quarter more, so
   * refused callers do not all come back at once), to the next coordinator URL if there are
   * several. Past it, the refusal is thrown. Default 60 s; 0: never wait.
   */
  maxBackPressureWaitMs?: number;
}

export interface BranchRequest {
  branchId?: string;
  participant: string;
  action: string;
  payload?: JsonObject;
}

export interface SagaStepRequest {
  name: string;
  participant: string;
  action: string;
  payload?: JsonObject;
  dependsOn?: string[];
}

export interface BeginRequest {
  mode: Mode;
  gid?: string;
  timeoutMs?: number;
  metadata?: JsonObject;
  branches?: BranchRequest[];
  steps?: SagaStepRequest[];
  concurrent?: boolean;
  /** msg only (required there): the action asked at the deadline whether the caller's local transaction committed. */
  check?: MsgCheckTarget;
  /** msg only: deliver the branches at once, with no local transaction (a durable fan-out). */
  submit?: boolean;
  wait?: boolean;
}

/**
 * Builds a saga step by step:
 * `client.saga().step('debit', 'account', 'debit', {...}).step('ship', 'shipping', 'ship', {...}, ['debit']).submit()`.
 * Naming a dependency makes the saga concurrent (a DAG); without any, steps run in order.
 */
export class SagaBuilder {
  private readonly steps: SagaStepRequest[] = [];

  constructor(
    private readonly client: TransactionClient,
    private readonly options: { gid?: string; timeoutMs?: number; metadata?: JsonObject; concurrent?: boolean },
  ) {}

  step(name: string, participant: string, action: string, payload: JsonObject = {}, dependsOn?: string[]): this {
    this.steps.push({ name, participant, action, payload, ...(dependsOn ? { dependsOn } : {}) });
    return this;
  }

  /** Submits the saga. With `wait` (default true) resolves once it is committed or rolled back. */
  submit(options: { wait?: boolean } = {}): Promise<TransactionView> {
    const concurrent = this.options.concurrent ?? this.steps.some((s) => s.dependsOn !== undefined);
    return this.client.begin({ ...this.options, mode: 'saga', steps: this.steps, concurrent, wait: options.wait ?? true });
  }
}

export interface RegisterParticipantRequest {
  name: string;
  /** rabbitmq and nats, like redis, carry no address: the coordinator uses its own RABBITMQ_URL / NATS_URL. */
  transport: 'http' | 'tcp' | 'redis' | 'rabbitmq' | 'nats';
  endpoint?: string;
  host?: string;
  port?: number;
  /**
   * rabbitmq or nats only: a publish target. Each action is the RabbitMQ queue (default
   * exchange) or the NATS JetStream subject of that name, with modes ["msg"] only.
   */
  publish?: boolean;
  actions: { name: string; modes: Mode[] }[];
  /** http only: headers the coordinator sends on every call (an API gateway's credentials). */
  headers?: Record<string, string>;
}

/**
 * A participant's report of a phase's final answer (PROTOCOL.md 3.6), sooner than the
 * coordinator's next repeat of the call it answered ongoing: `ok` has the effect of a 2xx
 * answer to that call (`result`: its body), `failed` the effect of a 409 (`result`: its body,
 * kept as the branch's lastError).
 */
export interface BranchOutcomeReport {
  phase: Phase;
  outcome: 'ok' | 'failed';
  /** Default null. */
  result?: Json;
}

/** An interactive transaction handed to the callback of `TransactionClient.tcc`. */
export class InteractiveTransaction {
  constructor(
    private readonly client: TransactionClient,
    readonly gid: string,
  ) {}

  /** Adds a branch; its phase 1 runs now. Throws CoordinatorError BRANCH_FAILED on a refusal. */
  branch(participant: string, action: string, payload: JsonObject = {}, branchId?: string): Promise<BranchOutcomeView> {
    return this.client.addBranch(this.gid, { participant, action, payload, branchId });
  }
}

/**
 * Client of the coordinator's REST API for transaction managers. Uses Node's fetch, which
 * keeps connections alive between calls.
 */
export class TransactionClient {
  private readonly http: CoordinatorHttp;

  constructor(options: TransactionClientOptions) {
    const urls = typeof options.coordinatorUrl === 'string' ? [options.coordinatorUrl] : options.coordinatorUrl;
    this.http = new CoordinatorHttp({ ...options, retries: options.retries ?? Math.max(2, urls.length) });
  }

  begin(request: BeginRequest): Promise<TransactionView> {
    const gid = request.gid ?? randomUUID();
    return this.request({ name: 'begin', gid, mode: request.mode }, 'POST', '/v1/transactions', { ...request, gid });
  }

  addBranch(gid: string, branch: BranchRequest): Promise<BranchOutcomeView> {
    return this.request({ name: 'addBranch', gid }, 'POST', `/v1/transactions/${encodeURIComponent(gid)}/branches`, { ...branch, branchId: branch.branchId ?? `b-${randomUUID()}` });
  }

  commit(gid: string, options: { wait?: boolean } = {}): Promise<TransactionView> {
    return this.request({ name: 'commit', gid }, 'POST', `/v1/transactions/${encodeURIComponent(gid)}/commit`, options);
  }

  rollback(gid: string, options: { wait?: boolean } = {}): Promise<TransactionView> {
    return this.request({ name: 'rollback', gid }, 'POST', `/v1/transactions/${encodeURIComponent(gid)}/rollback`, options);
  }

  get(gid: string): Promise<TransactionView> {
    return this.request({ name: 'get', gid }, 'GET', `/v1/transactions/${encodeURIComponent(gid)}`);
  }

  /**
   * Reports the final answer of a phase the participant answered ongoing (PROTOCOL.md 3.6):
   * `POST /v1/transactions/{gid}/branches/{branchId}/outcome`, with the key that owns the
   * branch's participant. Answers the transaction view; a repeat is `200` with the view too;
   * a phase that is not in progress (already settled, or not begun) throws CoordinatorError
   * `PHASE_NOT_IN_PROGRESS` (409). A participant uses BranchOutcomes, which retries and tells
   * the two apart for it.
   */
  reportOutcome(gid: string, branchId: string, report: BranchOutcomeReport): Promise<TransactionView> {
    const body = { phase: report.phase, outcome: report.outcome, result: report.result ?? null };
    return this.request({ name: 'reportOutcome', gid }, 'POST', `/v1/transactions/${encodeURIComponent(gid)}/branches/${encodeURIComponent(branchId)}/outcome`, body);
  }

  /** Registers (or updates) a participant; the answer carries its signing secret (PROTOCOL.md 4). */
  registerParticipant(request: RegisterParticipantRequest): Promise<ParticipantRegistrationView> {
    return this.request({ name: 'registerParticipant' }, 'POST', '/v1/participants', request);
  }

  /** The first 200 participants by name (the coordinator's cap on an unpaged list); listParticipantsPage pages through all. */
  listParticipants(): Promise<ParticipantView[]> {
    return this.request({ name: 'listParticipants' }, 'GET', '/v1/participants');
  }

  /** One page of participants by name; pass `nextCursor` back as `cursor` until it is null. */
  listParticipantsPage(page: { limit?: number; cursor?: string } = {}): Promise<{ items: ParticipantView[]; nextCursor: string | null }> {
    const query = new URLSearchParams({ limit: String(page.limit ?? 50), ...(page.cursor ? { cursor: page.cursor } : {}) });
    return this.request({ name: 'listParticipants' }, 'GET', `/v1/participants?${query.toString()}`);
  }

  /** Deletes a participant this key owns (409 PARTICIPANT_IN_USE while an unfinished transaction has a branch on it). */
  async deleteParticipant(name: string): Promise<void> {
    await this.request<null>({ name: 'deleteParticipant' }, 'DELETE', `/v1/participants/${encodeURIComponent(name)}`);
  }

  /** Starts building a saga (see SagaBuilder). */
  saga(options: { gid?: string; timeoutMs?: number; metadata?: JsonObject; concurrent?: boolean } = {}): SagaBuilder {
    return new SagaBuilder(this, options);
  }

  /** Starts building a two-phase message (see MsgBuilder): `.add(...)`, then `.doAndSubmit(...)`, `.prepare(...)` or `.submit()`. */
  msg(options: MsgOptions = {}): MsgBuilder {
    return new MsgBuilder(this, options);
  }

  /**
   * Runs an interactive TCC transaction: begins it, runs `work`, commits when `work` resolves
   * and rolls back when it throws (rethrowing the error). Returns the committed transaction.
   */
  async tcc(
    work: (tx: InteractiveTransaction) => Promise<void>,
    options: { gid?: string; timeoutMs?: number; metadata?: JsonObject; wait?: boolean } = {},
  ): Promise<TransactionView> {
    const { wait = true, ...begin } = options;
    const started = await this.begin({ mode: 'tcc', ...begin });
    try {
      await work(new InteractiveTransaction(this, started.gid));
    } catch (error) {
      await this.rollback(started.gid, { wait }).catch(() => undefined);
      throw error;
    }
    return this.commit(started.gid, { wait });
  }

  /** The answer's body when it is a success; otherwise the coordinator's refusal (or a proxy's page) as a CoordinatorError. */
  private async request<T>(operation: CoordinatorOperation, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const answer = await this.http.request(operation, method, path, body);
    if (answer.status >= 200 && answer.status < 300 && answer.json) return answer.body as T;
    // An answer that is not the coordinator's JSON (a gateway's 502 page) is still a
    // CoordinatorError with its status, so callers can tell a transient one from the rest.
    if (!answer.json) throw new CoordinatorError(answer.status, null, `coordinator answered ${answer.status} (not JSON)`, answer.retryAfterMs);
    throw new CoordinatorError(answer.status, answer.body as ErrorBody | null, undefined, answer.retryAfterMs);
  }
}
