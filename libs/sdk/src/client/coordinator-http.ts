import { setTimeout as delay } from 'node:timers/promises';
import { ClientSpan, shownUrl, type CoordinatorOperation } from '../tracing/client-span.js';
import { CoordinatorError, parseRetryAfter } from './coordinator-error.js';

export type { CoordinatorOperation } from '../tracing/client-span.js';

/** An answer of the coordinator as it came: its status, its body parsed, its Retry-After. */
export interface CoordinatorAnswer {
  status: number;
  /** The body parsed; null when empty. */
  body: unknown;
  /** False when the body was not JSON: not the coordinator speaking (its API answers JSON), a proxy in front of it. */
  json: boolean;
  retryAfterMs: number | null;
}

export interface CoordinatorHttpOptions {
  /** The coordinator, or several instances of it: a request that gets no answer from one goes to the next. */
  coordinatorUrl: string | readonly string[];
  apiKey?: string;
  /** Per request. Default 60 s. */
  timeoutMs?: number;
  /**
   * How many times a request that got no answer (no connection, a timeout, a proxy's non-JSON
   * 5xx page), or `503 STORE_UNAVAILABLE`, is sent again, after 200 ms, 400 ms, ...
   */
  retries: number;
  /**
   * How long in all a request may wait on answers asking it to come back later (`503 OVERLOADED`,
   * `429 RATE_LIMITED`): each is sent again after its Retry-After (at least 50 ms, plus up to a
   * quarter more, so refused callers do not all come back at once). Past it, that answer is
   * handed back. Default 60 s; 0: never wait.
   */
  maxBackPressureWaitMs?: number;
}

const errorCodeOf = (body: unknown): unknown => (typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined);

/**
 * The one HTTP exchange with the coordinator's REST API, for every SDK client of it
 * (TransactionClient, the workflow runner's coordinator): keep-alive fetch, the API key, the
 * failover over several instances, and what is sent again. Sending again is safe because every
 * request the SDK makes is idempotent (a begin names its gid, an added branch or step its id,
 * and decisions are idempotent, PROTOCOL.md 3.1-3.3, 3.7). Any answer the coordinator gave is
 * handed back as it is; no answer at all, after the retries, is a CoordinatorError `NETWORK`.
 *
 * Each request is one span `dtx.client {operation}` (ClientSpan) over all its attempts, in the
 * caller's trace, and each attempt sends its `traceparent`: the coordinator keeps it with the
 * transaction and passes it on to every participant call.
 */
export class CoordinatorHttp {
  private readonly baseUrls: readonly string[];
  /** The same, as a span's `url.full` may show them (no credentials). */
  private readonly shownUrls: readonly string[];
  /** The instance requests go to; moves on to the next one when it does not answer. */
  private current = 0;

  constructor(private readonly options: CoordinatorHttpOptions) {
    const urls = typeof options.coordinatorUrl === 'string' ? [options.coordinatorUrl] : options.coordinatorUrl;
    if (urls.length === 0) throw new Error('a coordinator client needs at least one coordinatorUrl');
    this.baseUrls = urls.map((url) => url.replace(/\/+$/, ''));
    this.shownUrls = this.baseUrls.map(shownUrl);
  }

  async request(operation: CoordinatorOperation, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<CoordinatorAnswer> {
    const span = ClientSpan.start(operation, method);
    let answer: CoordinatorAnswer;
    try {
      answer = await span.run(() => this.exchange(span, method, path, body));
    } catch (error) {
      span.failed(error, error instanceof CoordinatorError ? error.code : 'Error');
      throw error;
    }
    const code = errorCodeOf(answer.body);
    span.answered(answer.status, typeof code === 'string' ? code : undefined);
    return answer;
  }

  /** The request, sent again as the options say, until it has an answer to hand back. */
  private async exchange(span: ClientSpan, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<CoordinatorAnswer> {
    let backPressureBudgetMs = this.options.maxBackPressureWaitMs ?? 60_000;
    for (let attempt = 0; ; ) {
      const answer = await this.send(span, method, path, body);
      const code = errorCodeOf(answer?.body);
      let delayMs: number;
      if (answer && (code === 'OVERLOADED' || code === 'RATE_LIMITED')) {
        // At least 50 ms: a `Retry-After: 0` charged nothing to the budget and was sent again at once, for ever.
        delayMs = Math.max(50, Math.round((answer.retryAfterMs ?? 1_000) * (1 + Math.random() / 4)));
        if (delayMs > backPressureBudgetMs) return answer;
        backPressureBudgetMs -= delayMs;
      } else if (answer === null || code === 'STORE_UNAVAILABLE' || (!answer.json && answer.status >= 500)) {
        if (attempt >= this.options.retries) {
          if (answer) return answer;
          throw new CoordinatorError(0, null, `coordinator unreachable at ${this.baseUrls.join(', ')} after ${attempt + 1} ${attempt === 0 ? 'attempt' : 'attempts'}`);
        }
        delayMs = 200 * 2 ** attempt++;
      } else {
        return answer;
      }
      this.current = (this.current + 1) % this.baseUrls.length;
      await delay(delayMs);
    }
  }

  /** One request; null when no answer came (no connection, a timeout). */
  private async send(span: ClientSpan, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<CoordinatorAnswer | null> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    span.inject(headers);
    if (span.recording) span.attempt(`${this.shownUrls[this.current]}${path}`);
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrls[this.current]}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
      });
      text = await response.text();
    } catch {
      return null;
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    try {
      return { status: response.status, body: text ? JSON.parse(text) : null, json: true, retryAfterMs };
    } catch {
      return { status: response.status, body: null, json: false, retryAfterMs };
    }
  }
}
