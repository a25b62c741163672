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

  it('recognises every shape a refused or overloaded database takes', () => {
    // Server answers while starting up, shutting down, full, or its backend killed.
    expect(isStoreUnavailable(driverError('57P03', 'the database system is starting up'))).toBe(true);
    expect(isStoreUnavailable(driverError('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isStoreUnavailable(driverError('57P02', 'terminating connection due to crash of another server process'))).toBe(true);
    expect(isStoreUnavailable(driverError('53300', 'sorry, too many clients already'))).toBe(true);
    expect(isStoreUnavailable(driverError('57014', 'canceling statement due to statement timeout'))).toBe(true);
    // The same words without their SQLSTATE.
    expect(isStoreUnavailable(new Error('the database system is starting up'))).toBe(true);
    expect(isStoreUnavailable(new Error('sorry, too many clients already'))).toBe(true);
    // Sockets: by code, whatever the message (an AggregateError of every address has none).
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']) {
      expect(isStoreUnavailable(driverError(code, ''))).toBe(true);
    }
    const everyAddress = new AggregateError([driverError('ECONNREFUSED', 'connect ECONNREFUSED ::1:5432'), driverError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')], '');
    expect(isStoreUnavailable(everyAddress)).toBe(true);
    expect(isStoreUnavailable(new AggregateError([new Error('x')], ''))).toBe(false);
    // node-postgres's own words: its pool's and its client's connection timeouts, a dropped socket.
    expect(isStoreUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isStoreUnavailable(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isStoreUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    // Wrapped: as a cause, or as TypeORM's driverError.
    expect(isStoreUnavailable(new Error('query failed', { cause: driverError('08006', 'connection failure') }))).toBe(true);
    expect(isStoreUnavailable(queryFailed('57P03', 'the database system is starting up'))).toBe(true);
  });

  it('leaves every other error alone: bugs and constraint violations are not retried blindly', () => {
    expect(isStoreUnavailable(queryFailed('23505', 'duplicate key value violates unique constraint'))).toBe(false);
    expect(isStoreUnavailable(queryFailed('42P01', 'relation "x" does not exist'))).toBe(false);
    expect(isStoreUnavailable(new TypeError("Cannot read properties of undefined (reading 'gid')"))).toBe(false);
    expect(isStoreUnavailable('Connection terminated')).toBe(false);
    expect(isStoreUnavailable(null)).toBe(false);
    // Data the database refused is the request's fault, not an outage.
    expect(isStoreUnavailable(queryFailed('22P05', 'unsupported Unicode escape sequence'))).toBe(false);
    expect(isStoreUnavailable(queryFailed('22008', 'date/time field value out of range'))).toBe(false);
    // Self-referencing causes end.
    const looped: Error & { cause?: unknown } = new Error('x');
    looped.cause = looped;
    expect(isStoreUnavailable(looped)).toBe(false);
  });
});
