/**
 * Whether an error means the Postgres connection was lost or refused (the server restarted, an
 * operator ran pg_terminate_backend, the pool could not connect) rather than a bug: the request
 * may be sent again as it was. Postgres SQLSTATE class 08 is "connection exception"; 57P01-57P03
 * are the server shutting down or not accepting connections yet; 53300 is too many connections.
 * node-postgres reports a dropped socket without a code, by message.
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/;
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|ECONNREFUSED|ECONNRESET|Client has encountered a connection error/i;

export function isStoreUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  // TypeORM's QueryFailedError keeps the driver's error (with its SQLSTATE) as `driverError`.
  const driverError = 'driverError' in error ? error.driverError : error;
  const code = typeof driverError === 'object' && driverError !== null && 'code' in driverError ? driverError.code : undefined;
  if (typeof code === 'string' && UNAVAILABLE_SQLSTATE.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return UNAVAILABLE_MESSAGE.test(message);
}
