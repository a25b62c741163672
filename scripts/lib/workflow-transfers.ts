/**
 * Bank transfers run as workflows (PROTOCOL.md 3.7) whose host is the fault runner itself: an
 * HTTP server in the runner's process, registered at the coordinator like the banks are, with
 * one action `transfer` in mode `workflow`. A transfer begins the workflow with its legs as
 * input and runs the workflow's function here: each leg recorded as a `tcc` step (`leg1`,
 * `leg2`), then commit if every step answered 201, else rollback. The coordinator's resume
 * (`POST {endpoint}/transfer/resume`) runs the same function again from the input: its steps
 * replay (the coordinator answers them from its record), so running it twice, or in two places
 * at once, is safe.
 *
 * Written against the REST API rather than the SDK's `@Workflow` host, which needs a Nest app:
 * the runner's process is a plain script, and the function is two step calls and a decision.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { parseSigningSecret, verifyCall, type Json, type PhaseCallBody, type TransactionView } from '@nest-dtx/protocol';
import { CoordinatorHttp } from '../../libs/sdk/src/client/coordinator-http.js';
import type { Acknowledged, Leg } from './transfers.js';

/** The host's one workflow. */
export const WORKFLOW_NAME = 'transfer';

/** How one run of the workflow's function ended. */
export type WorkflowRunEnd =
  /** It asked for commit or rollback and the coordinator took it, or it found the workflow decided already. */
  | { decided: true; view: Pick<TransactionView, 'gid' | 'status'> | null }
  /** It stopped without deciding (no coordinator answered, or the run was told to stop): the coordinator's resume finishes it. */
  | { decided: false; why: string };

/** What the host counts over a run. */
export interface WorkflowHostFigures {
  /** Resume calls the host received (its fault proxy's drops included only when they reached it). */
  resumeCalls: number;
  /** Runs a resume started (a resume of a gid this process was running joined that run instead). */
  runsFromResume: number;
  /** Of those, the runs that decided the workflow. */
  decidedByResume: number;
  /** Transfers whose first run was stopped after its first step on purpose, as a host that crashed. */
  stoppedAfterFirstStep: number;
  /** Runs that ended undecided for another reason (the coordinators unreachable), by cause. */
  interrupted: Record<string, number>;
  /** Resume calls refused because their signature did not check. */
  badSignatures: number;
  /** The coordinators' answers to the runs' step calls, by status and error code (replays included). */
  stepAnswers: Record<string, number>;
}

interface WorkflowInput {
  legs: Leg[];
}

const isLeg = (value: unknown): value is Leg => {
  if (typeof value !== 'object' || value === null) return false;
  const leg = value as Record<string, unknown>;
  return (leg.bank === 'bank-a' || leg.bank === 'bank-b') && (leg.action === 'debit' || leg.action === 'credit') && typeof leg.account === 'string' && typeof leg.amount === 'number';
};
const inputOf = (payload: Json): WorkflowInput | null => {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const legs = payload.legs;
  if (!Array.isArray(legs)) return null;
  const parsed: Leg[] = [];
  for (const leg of legs as unknown[]) if (isLeg(leg)) parsed.push(leg);
  return parsed.length === legs.length && parsed.length > 0 ? { legs: parsed } : null;
};

const errorCode = (body: unknown): string => (typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : '');

/** A workflow's answer may carry the transaction view at its top (200) or under `transaction` (409). */
const viewIn = (body: unknown): Pick<TransactionView, 'gid' | 'status'> | null => {
  if (typeof body !== 'object' || body === null) return null;
  const candidate: unknown = 'transaction' in body ? body.transaction : body;
  if (typeof candidate !== 'object' || candidate === null) return null;
  const { gid, status } = candidate as { gid?: unknown; status?: unknown };
  return typeof gid === 'string' && typeof status === 'string' ? { gid, status: status as TransactionView['status'] } : null;
};

/** Thrown inside a run when the coordinators cannot be used now: the run stops undecided. */
class Interrupted extends Error {}

export interface WorkflowHostOptions {
  /** The host's participant name. */
  name: string;
  /** Every coordinator instance's URL: a request that gets no answer goes to the next one. */
  coordinatorUrls: () => string[];
  /** A key with the client role, when the coordinators require keys. */
  apiKey?: string;
}

/**
 * The runner's workflow host: starts workflow transfers and answers the coordinator's resume
 * calls. One run per gid at a time in this process; a resume of a gid being run joins it.
 */
export class WorkflowTransferHost {
  readonly figures: WorkflowHostFigures = { resumeCalls: 0, runsFromResume: 0, decidedByResume: 0, stoppedAfterFirstStep: 0, interrupted: {}, badSignatures: 0, stepAnswers: {} };
  private readonly runs = new Map<string, Promise<WorkflowRunEnd>>();
  private signingKeys: Buffer[] = [];
  private server: Server | null = null;

  constructor(private readonly options: WorkflowHostOptions) {}

  get name(): string {
    return this.options.name;
  }

  /** Listens on 127.0.0.1:`port`. */
  async listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.answer(req, res));
    await new Promise<void>((listening) => server.listen(port, '127.0.0.1', listening));
    this.server = server;
  }

  close(): void {
    this.server?.close();
  }

  /** Registers the host (action `transfer`, mode workflow) with `endpoint` (the host, or a proxy in front of it); keeps the signing secret to check resumes with. */
  async register(endpoint: string): Promise<void> {
    const answer = await this.http(8_000).request({ name: 'registerParticipant' }, 'POST', '/v1/participants', {
      name: this.options.name,
      transport: 'http',
      endpoint,
      actions: [{ name: WORKFLOW_NAME, modes: ['workflow'] }],
    });
    const secret = typeof answer.body === 'object' && answer.body !== null ? (answer.body as { signingSecret?: unknown }).signingSecret : undefined;
    if (answer.status >= 300 || typeof secret !== 'string') throw new Error(`workflow host registration answered ${answer.status} ${JSON.stringify(answer.body)}`);
    this.signingKeys = [parseSigningSecret(secret)];
  }

  /**
   * One workflow transfer: begins it (the legs as its input), then runs its function here. With
   * `stopAfterFirstStep` the first run records the first leg and stops, as a host that crashed
   * there: the coordinator's resume runs it again. Returns what the client was last told.
   */
  async transfer(
    gid: string,
    legs: Leg[],
    { timeoutMs, stopAfterFirstStep, targetUrl, clientError }: { timeoutMs: number; stopAfterFirstStep: boolean; targetUrl: string; clientError: (error: unknown) => void },
  ): Promise<Acknowledged | null> {
    const told = (view: Pick<TransactionView, 'gid' | 'status'> | null): Acknowledged | null => (view ? { view, at: Date.now() } : null);
    let last: Acknowledged | null = null;
    try {
      const begun = await this.http(8_000, targetUrl).request({ name: 'begin', gid, mode: 'workflow' }, 'POST', '/v1/transactions', {
        mode: 'workflow',
        gid,
        timeoutMs,
        workflow: { participant: this.options.name, name: WORKFLOW_NAME },
        input: { legs },
      });
      if (begun.status !== 200 && begun.status !== 201) throw new Error(`workflow begin answered ${begun.status} ${errorCode(begun.body)}`);
      last = told(viewIn(begun.body));
    } catch (error) {
      // Begun or not, the coordinator ends it (its resume runs the function, or its deadline rolls it back).
      clientError(error);
      return last;
    }
    if (stopAfterFirstStep) this.figures.stoppedAfterFirstStep++;
    const end = await this.run(gid, { legs }, stopAfterFirstStep ? 1 : Infinity, targetUrl);
    if (!end.decided) {
      if (!stopAfterFirstStep) clientError(new Error(`workflow run stopped undecided: ${end.why}`));
      return last;
    }
    return told(end.view) ?? last;
  }

  /** The run of `gid` under way in this process, or a new one. */
  private run(gid: string, input: WorkflowInput, stepsBeforeStop: number, targetUrl: string | null, fromResume = false): Promise<WorkflowRunEnd> {
    const running = this.runs.get(gid);
    if (running) return running;
    if (fromResume) this.figures.runsFromResume++;
    const run = this.runFunction(gid, input, stepsBeforeStop, targetUrl)
      .catch((error: unknown): WorkflowRunEnd => {
        const why = error instanceof Error ? error.message.replace(/[0-9]+/g, 'N').slice(0, 80) : String(error);
        this.figures.interrupted[why] = (this.figures.interrupted[why] ?? 0) + 1;
        return { decided: false, why };
      })
      .then((end) => {
        if (fromResume && end.decided) this.figures.decidedByResume++;
        return end;
      })
      .finally(() => this.runs.delete(gid));
    this.runs.set(gid, run);
    return run;
  }

  /**
   * The workflow's function: deterministic from its input, so a second run asks for the same
   * steps under the same ids and gets the recorded answers. Stops at the first leg that did not
   * answer 201 and rolls back; commits when every leg did.
   */
  private async runFunction(gid: string, input: WorkflowInput, stepsBeforeStop: number, targetUrl: string | null): Promise<WorkflowRunEnd> {
    const http = this.http(8_000, targetUrl);
    const path = (rest: string) => `/v1/transactions/${encodeURIComponent(gid)}${rest}`;
    /** An answer the run can act on, or Interrupted (nobody to ask now: leave it to the resume). */
    const ask = async (operation: 'recordStep' | 'commit' | 'rollback', rest: string, body: unknown) => {
      const answer = await http.request({ name: operation, gid }, 'POST', path(rest), body).catch((error: unknown) => {
        throw new Interrupted(error instanceof Error ? error.message : String(error));
      });
      // No coordinator's answer (a proxy's page, the store down after the retries, back pressure past its wait).
      if (!answer.json || (answer.status >= 500 && answer.status !== 502 && answer.status !== 504)) throw new Interrupted(`${rest} answered ${answer.status} ${errorCode(answer.body)}`);
      if (answer.status === 429) throw new Interrupted(`${rest} answered 429`);
      return answer;
    };
    let allPrepared = true;
    for (const [n, leg] of input.legs.entries()) {
      const answer = await ask('recordStep', '/steps', {
        stepId: `leg${n + 1}`,
        kind: 'tcc',
        participant: leg.bank,
        action: leg.action,
        payload: { accountId: leg.account, amount: leg.amount },
      });
      const code = errorCode(answer.body);
      const key = `${answer.status}${code ? ` ${code}` : ''}`;
      this.figures.stepAnswers[key] = (this.figures.stepAnswers[key] ?? 0) + 1;
      // As a host that crashed once the step was answered, whatever the answer: the resume goes on.
      if (n + 1 >= stepsBeforeStop) return { decided: false, why: 'stopped on purpose' };
      if (answer.status === 201) continue;
      // Decided already (by an earlier run, the deadline or an operator): nothing left to do.
      if (code === 'TX_NOT_ACTIVE') return { decided: true, view: viewIn(answer.body) };
      // A bug in this function or the coordinator, not a fault: it stays active, flagged, and rolls back at its deadline.
      if (code === 'STEP_MISMATCH' || answer.status === 400 || answer.status === 404) throw new Error(`step leg${n + 1} answered ${answer.status} ${code}`);
      // Refused (409 BRANCH_FAILED), unknown (502/504 BRANCH_UNKNOWN) or still running (202): no commit.
      allPrepared = false;
      break;
    }
    const decision = await (allPrepared ? ask('commit', '/commit', {}) : ask('rollback', '/rollback', {}));
    // 200: decided now. 409: decided already (TX_NOT_ACTIVE), or a commit the coordinator turned into a rollback (CANNOT_COMMIT).
    if (decision.status === 200 || decision.status === 201 || decision.status === 409) return { decided: true, view: viewIn(decision.body) };
    throw new Error(`${allPrepared ? 'commit' : 'rollback'} answered ${decision.status} ${errorCode(decision.body)}`);
  }

  /**
   * One client of the coordinators' REST API for one run: `targetUrl` first (the instance the
   * transfer was sent to: one armed with a crash point, say), then failover over every other
   * instance, with the API's own resends.
   */
  private http(timeoutMs: number, targetUrl: string | null = null): CoordinatorHttp {
    const all = this.options.coordinatorUrls();
    const urls = targetUrl ? [targetUrl, ...all.filter((url) => url !== targetUrl)] : all;
    return new CoordinatorHttp({ coordinatorUrl: urls, timeoutMs, retries: Math.max(3, urls.length), maxBackPressureWaitMs: 10_000, ...(this.options.apiKey ? { apiKey: this.options.apiKey } : {}) });
  }

  /**
   * `POST /transfer/resume`, signed (PROTOCOL.md 5.5): runs the function again (or joins the
   * run under way) and answers 200 once it decided, 202 while it runs (the coordinator asks
   * again), 503 when it stopped undecided (the coordinator retries as for a failed call).
   */
  private answer(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const reply = (status: number, body: Json) => {
        if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== `/${WORKFLOW_NAME}/resume`) return reply(404, { error: 'NOT_FOUND' });
      const check = verifyCall(this.signingKeys, req.headers, raw, Math.floor(Date.now() / 1000));
      if (!check.ok) {
        this.figures.badSignatures++;
        return reply(401, { error: check.code, message: check.reason });
      }
      let call: PhaseCallBody;
      try {
        call = JSON.parse(raw.toString('utf8')) as PhaseCallBody;
      } catch {
        return reply(400, { error: 'VALIDATION_FAILED', message: 'body is not JSON' });
      }
      const input = inputOf(call.payload);
      if (call.phase !== 'resume' || !input) return reply(400, { error: 'VALIDATION_FAILED', message: 'not a resume of a transfer' });
      this.figures.resumeCalls++;
      const run = this.run(call.gid, input, Infinity, null, true);
      // Within the coordinator's call timeout: a short run is answered as decided at once.
      const waited = new Promise<null>((resolve) => setTimeout(() => resolve(null), 300));
      void Promise.race([run, waited]).then((end) => {
        if (end === null) reply(202, { retryAfterMs: 300 });
        else if (end.decided) reply(200, { decided: end.view?.status ?? 'decided' });
        else reply(503, { error: 'NOT_DECIDED', message: end.why });
      });
    });
  }
}
