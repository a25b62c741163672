// The admin API (PROTOCOL.md 6), always on this page's own origin: when API keys are
// configured the browser's Basic prompt (answered once) covers fetch() and EventSource alike.

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path) {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: method === 'POST' ? { accept: 'application/json', 'content-type': 'application/json' } : { accept: 'application/json' },
    body: method === 'POST' ? '{}' : undefined,
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
export const getTransaction = (gid) => request('GET', transactionPath(gid));
export const retryTransaction = (gid) => request('POST', `${transactionPath(gid)}/retry`);
export const rollbackTransaction = (gid) => request('POST', `${transactionPath(gid)}/rollback`);

/** Server-sent state changes of every transaction, from every coordinator instance. */
export const openChangeStream = () => new EventSource('/admin/stream');
