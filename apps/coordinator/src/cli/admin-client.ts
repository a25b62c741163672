import type {
  HeldLocksPage,
  ParticipantAdminView,
  SecretRotationView,
  TransactionCounts,
  TransactionDetailView,
  TransactionPage,
  TransactionView,
} from '@nest-dtx/protocol';
import type { ListFilters, LockFilters } from './arguments.js';
import { CliError, ExitCode, exitCodeForStatus } from './exit-codes.js';

/** An answer of the admin API: parsed for the tables, and as sent for --json. */
export interface AdminAnswer<T> {
  body: T;
  text: string;
}

export interface AdminClientOptions {
  /** The coordinator's base URL, without a trailing slash. */
  url: string;
  /** Sent as `Authorization: Bearer <key>`; none without. */
  apiKey?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** The admin API (PROTOCOL.md 6) over fetch; every failure becomes a CliError with its exit code. */
export class AdminClient {
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: AdminClientOptions) {
    this.fetch = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  listTransactions(filters: ListFilters): Promise<AdminAnswer<TransactionPage>> {
    return this.request('GET', `/admin/transactions${search(filters)}`);
  }

  heldLocks(filters: LockFilters): Promise<AdminAnswer<HeldLocksPage>> {
    return this.request('GET', `/admin/locks${search(filters)}`);
  }

  transaction(gid: string): Promise<AdminAnswer<TransactionDetailView>> {
    return this.request('GET', `/admin/transactions/${encodeURIComponent(gid)}`);
  }

  retry(gid: string): Promise<AdminAnswer<TransactionView>> {
    return this.request('POST', `/admin/transactions/${encodeURIComponent(gid)}/retry`, {});
  }

  rollback(gid: string): Promise<AdminAnswer<TransactionView>> {
    return this.request('POST', `/admin/transactions/${encodeURIComponent(gid)}/rollback`, {});
  }

  stats(): Promise<AdminAnswer<TransactionCounts>> {
    return this.request('GET', '/admin/stats');
  }

  participants(): Promise<AdminAnswer<ParticipantAdminView[]>> {
    return this.request('GET', '/admin/participants');
  }

  rotateSecret(name: string, overlapSeconds?: number): Promise<AdminAnswer<SecretRotationView>> {
    return this.request('POST', `/admin/participants/${encodeURIComponent(name)}/rotate-secret`, overlapSeconds === undefined ? {} : { overlapSeconds });
  }

  release(name: string): Promise<AdminAnswer<ParticipantAdminView>> {
    return this.request('POST', `/admin/participants/${encodeURIComponent(name)}/release`, {});
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: object): Promise<AdminAnswer<T>> {
    const target = `${this.options.url}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await this.fetch(target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw new CliError('UNREACHABLE', `${method} ${target}: ${networkReason(error, this.timeoutMs)}`, ExitCode.UNAVAILABLE);
    }
    if (!response.ok) throw this.refusal(response.status, text);
    try {
      return { body: JSON.parse(text) as T, text };
    } catch {
      throw new CliError('BAD_ANSWER', `${method} ${target}: ${response.status} with a body that is not JSON`, ExitCode.UNAVAILABLE);
    }
  }

  /** The API's error body (PROTOCOL.md 3) as a CliError; anything else by its status. */
  private refusal(status: number, text: string): CliError {
    const { error, message } = errorBody(text);
    const code = error ?? `HTTP_${status}`;
    let reason = message ?? (text.trim().split('\n')[0].slice(0, 200) || `HTTP ${status}`);
    if ((status === 401 || status === 403) && !this.options.apiKey) reason += ' (DTX_API_KEY is unset)';
    return new CliError(code, reason, exitCodeForStatus(status));
  }
}

/** Filters as a query string (`?a=1&b=2`, '' for none), the undefined ones left out. */
function search(filters: object): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value !== undefined) query.set(name, String(value));
  return query.size > 0 ? `?${query.toString()}` : '';
}

function errorBody(text: string): { error?: string; message?: string } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return {};
    const { error, message } = parsed as Record<string, unknown>;
    return { error: typeof error === 'string' ? error : undefined, message: typeof message === 'string' ? message : undefined };
  } catch {
    return {};
  }
}

/** Why fetch failed, in words: `connect ECONNREFUSED 127.0.0.1:1`, `no answer within 30000 ms`. */
function networkReason(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return `no answer within ${timeoutMs} ms`;
  const cause = error instanceof Error ? error.cause : undefined;
  // Happy eyeballs (localhost on ::1 and 127.0.0.1) fails with one error per address.
  if (cause instanceof AggregateError) return cause.errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ') || cause.message;
  if (cause instanceof Error) return cause.message || (error as Error).message;
  return error instanceof Error ? error.message : String(error);
}
