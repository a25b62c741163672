import { describe, expect, it } from 'vitest';
import { LOG_LEVELS, pinoLevelOf, structuredMessage, toLogRecord } from './log-record.js';

describe('pinoLevelOf', () => {
  it('maps every LOG_LEVEL to the pino level of the same severity', () => {
    expect(LOG_LEVELS.map(pinoLevelOf)).toEqual(['error', 'warn', 'info', 'debug', 'trace']);
    expect(pinoLevelOf('fatal')).toBe('fatal');
  });
});

describe('structuredMessage', () => {
  it('keeps the message and the defined fields, and drops undefined ones', () => {
    expect(structuredMessage('phase 2 incomplete', { gid: 'g1', branchId: undefined, attempts: 3 })).toEqual({
      msg: 'phase 2 incomplete',
      gid: 'g1',
      attempts: 3,
    });
  });

  it('never lets a field named msg replace the message', () => {
    expect(structuredMessage('the message', { msg: 'a field' })).toEqual({ msg: 'the message' });
  });
});

describe('toLogRecord (Nest calling conventions)', () => {
  it('reads the context a contextual Logger appends', () => {
    expect(toLogRecord('log', 'Mapped {/v1, POST} route', ['RouterExplorer'])).toEqual({
      msg: 'Mapped {/v1, POST} route',
      context: 'RouterExplorer',
      fields: {},
      stack: undefined,
    });
  });

  it('turns a structured message into fields beside msg', () => {
    const record = toLogRecord('warn', { msg: 'lease lost', gid: 'g1', branchId: 'b2' }, ['TransactionEngine']);
    expect(record).toEqual({ msg: 'lease lost', context: 'TransactionEngine', fields: { gid: 'g1', branchId: 'b2' }, stack: undefined });
  });

  it('renames a field that would clash with what every line has (level, time, context…)', () => {
    expect(toLogRecord('log', { msg: 'm', level: 'high', gid: 'g1' }, ['Ctx']).fields).toEqual({ field_level: 'high', gid: 'g1' });
  });

  it('reads error(message, stack, context), and error(message) from a contextual Logger', () => {
    const stack = 'Error: boom\n    at somewhere (file.js:1:1)';
    expect(toLogRecord('error', 'boom', [stack, 'HttpExceptionFilter'])).toMatchObject({ msg: 'boom', context: 'HttpExceptionFilter', stack });
    // Logger.error(msg) with a context passes (msg, undefined, context).
    expect(toLogRecord('error', { msg: 'saga run failed', gid: 'g1' }, [undefined, 'TransactionsService'])).toEqual({
      msg: 'saga run failed',
      context: 'TransactionsService',
      fields: { gid: 'g1' },
      stack: undefined,
    });
  });

  it('tells a lone stack from a context on error lines', () => {
    const stack = 'Error: boom\n    at somewhere (file.js:1:1)';
    expect(toLogRecord('error', 'boom', [stack])).toMatchObject({ msg: 'boom', context: undefined, stack });
  });

  it('keeps an Error message and its stack', () => {
    const error = new Error('database unreachable');
    const record = toLogRecord('error', error, ['TypeOrmModule']);
    expect(record.msg).toBe('database unreachable');
    expect(record.stack).toContain('database unreachable');
  });

  it('keeps extra parameters instead of losing them', () => {
    expect(toLogRecord('log', 'value', [{ a: 1 }, 'Ctx']).fields).toEqual({ extra: ['{"a":1}'] });
  });
});
