// The admin API (PROTOCOL.md 6), always on this page's own origin: when API keys are
// configured the browser's Basic prompt (answered once) covers fetch() and EventSource alike.
// Basic alone authorises reads only (another site's form could send it too); POSTs also carry
// the console token, which GET /admin/session hands to pages of this origin.

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const CONSOLE_TOKEN_HEADER = 'x-dtx-console-token';
/**
 * A request not answered by then fails: the list applies its reloads and changes in turn, so
 * one request left hanging (a connection dropped without a reset) would hold up every update.
 */
const REQUEST_TIMEOUT_MS = 30_000;

/** The session token, fetched once (null without API keys); a failed fetch is tried again next time. */
let session = null;
function consoleToken() {
  session ??= request('GET', '/admin/session').then(
    (body) => body?.token ?? null,
    (error) => {
      session = null;
      throw error;
    },
  );
  return session;
}

async function request(method, path) {
  const headers = { accept: 'application/json' };
  if (method === 'POST') {
    headers['content-type'] = 'application/json';
    const token = await consoleToken();
    if (token) headers[CONSOLE_TOKEN_HEADER] = token;
  }
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers,
    body: method === 'POST' ? '{}' : undefined,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiFailure(response.status, body?.error ?? `HTTP_${response.status}`, body?.message ?? response.statusText);
  }
  return body;
}

const transactionPath = (gid) => `/admin/transactions/${encodeURIComponent(gid)}`;

/** filters: { status, mode, participant, attention, from, to } as query parameters (empty ones left out). */
export function filterQuery(filters) {
  const query = new URLSearchParams();
  if (filters.status) query.set('status', filters.status);
  if (filters.mode) query.set('mode', filters.mode);
  if (filters.participant) query.set('participant', filters.participant);
  if (filters.attention) query.set('attention', 'true');
  if (filters.from) query.set('from', filters.from);
  if (filters.to) query.set('to', filters.to);
  return query;
}

export function listTransactions(filters, cursor, limit = 50) {
  const query = filterQuery(filters);
  query.set('limit', String(limit));
  if (cursor) query.set('cursor', cursor);
  return request('GET', `/admin/transactions?${query}`);
}

/** Row locks AT branches hold now, held longest first (GET /admin/locks). */
export function listHeldLocks(cursor, limit = 100) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set('cursor', cursor);
  return request('GET', `/admin/locks?${query}`);
}

export const getStats = () => request('GET', '/admin/stats');
/** Every participant with its gate on the instance that answers (GET /admin/participants). */
export const listParticipants = () => request('GET', '/admin/participants');
export const getTransaction = (gid) => request('GET', transactionPath(gid));
export const retryTransaction = (gid) => request('POST', `${transactionPath(gid)}/retry`);
export const rollbackTransaction = (gid) => request('POST', `${transactionPath(gid)}/rollback`);

/** Server-sent state changes of every transaction, from every coordinator instance. */
export const openChangeStream = () => new EventSource('/admin/stream');
