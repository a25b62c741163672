/**
 * Whether an error means the Postgres connection was lost or refused (the server restarted, an
 * operator ran pg_terminate_backend, the pool could not connect) rather than a bug: the request
 * may be sent again as it was. Postgres SQLSTATE class 08 is "connection exception", 53
 * "insufficient resources" (53300: too many connections); 57P01-57P05 are the server shutting
 * down, crashing, not accepting connections yet (starting up, in recovery), the database
 * dropped, an idle session ended; 57014 a query cancelled (statement timeout, an operator).
 */
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0[1-5]|57014)$/;

/** Node's socket errors: the connection could not be made (refused, unreachable, no DNS) or broke. */
const UNAVAILABLE_SOCKET = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * node-postgres reports some failures by message only: a dropped socket, its pool's or its
 * client's connection timeout, a client broken by an earlier error. The server's own words
 * come last, for a startup refusal that lost its SQLSTATE on the way.
 */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|read ECONNRESET|write EPIPE|the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|too many clients already|remaining connection slots are reserved/i;

/** How far down `cause`, `driverError` and an AggregateError's `errors` the check looks. */
const MAX_NESTING = 4;

export function isStoreUnavailable(error: unknown, nesting = 0): boolean {
  if (typeof error !== 'object' || error === null || nesting > MAX_NESTING) return false;
  const code = 'code' in error ? error.code : undefined;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_SOCKET.has(code))) return true;
  if (error instanceof Error && UNAVAILABLE_MESSAGE.test(error.message)) return true;
  // TypeORM's QueryFailedError keeps the driver's error (with its SQLSTATE) as `driverError`;
  // Node reports a refused connection to every address of a name as an AggregateError (no message, the reasons in `errors`).
  const inner: unknown[] = [];
  if ('driverError' in error) inner.push(error.driverError);
  if ('cause' in error) inner.push(error.cause);
  if (error instanceof AggregateError) inner.push(...(error.errors as unknown[]));
  return inner.some((nested) => isStoreUnavailable(nested, nesting + 1));
}
