import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { isStoreUnavailable } from './store-unavailable.js';

const driverError = (code: string | undefined, message: string): Error => Object.assign(new Error(message), code ? { code } : {});
const queryFailed = (code: string | undefined, message: string) => new QueryFailedError('SELECT 1', [], driverError(code, message));

describe('isStoreUnavailable', () => {
  it('recognises a lost or refused Postgres connection, wrapped by TypeORM or not', () => {
    expect(isStoreUnavailable(queryFailed('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isStoreUnavailable(queryFailed('08006', 'connection failure'))).toBe(true);
    expect(isStoreUnavailable(queryFailed('53300', 'sorry, too many clients already'))).toBe(true);
    expect(isStoreUnavailable(queryFailed(undefined, 'Connection terminated unexpectedly'))).toBe(true);
    expect(isStoreUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isStoreUnavailable(driverError(undefined, 'connect ECONNREFUSED 127.0.0.1:5432'))).toBe(true);
  });

  it('leaves every other error alone: bugs and constraint violations are not retried blindly', () => {
    expect(isStoreUnavailable(queryFailed('23505', 'duplicate key value violates unique constraint'))).toBe(false);
    expect(isStoreUnavailable(queryFailed('42P01', 'relation "x" does not exist'))).toBe(false);
    expect(isStoreUnavailable(new TypeError("Cannot read properties of undefined (reading 'gid')"))).toBe(false);
    expect(isStoreUnavailable('Connection terminated')).toBe(false);
    expect(isStoreUnavailable(null)).toBe(false);
  });
});
