import { Writable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonLogger } from './json-logger.js';
import { forTransaction } from './transaction-logger.js';

/** Collects what pino writes, one parsed JSON object per line. */
function memoryDestination(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { stream, lines };
}

afterEach(() => Logger.overrideLogger(true));

describe('JsonLogger', () => {
  it('writes one JSON object per line with level name, ISO time, instance, context and msg', () => {
    const out = memoryDestination();
    const logger = new JsonLogger({ level: 'log', instance: 'coord-1', destination: out.stream });
    logger.log('listening', 'Bootstrap');
    const [line] = out.lines();
    expect(line).toMatchObject({ level: 'info', instance: 'coord-1', context: 'Bootstrap', msg: 'listening' });
    expect(new Date(String(line.time)).toISOString()).toBe(line.time);
  });

  it('honours LOG_LEVEL: at warn, log and debug lines are dropped', () => {
    const out = memoryDestination();
    const logger = new JsonLogger({ level: 'warn', instance: 'i', destination: out.stream });
    logger.debug('d');
    logger.log('l');
    logger.warn('w');
    logger.error('e');
    expect(out.lines().map((l) => l.level)).toEqual(['warn', 'error']);
  });

  it('maps verbose to trace', () => {
    const out = memoryDestination();
    const logger = new JsonLogger({ level: 'verbose', instance: 'i', destination: out.stream });
    logger.verbose('v');
    expect(out.lines()[0]).toMatchObject({ level: 'trace', msg: 'v' });
  });

  it('gives the lines of a TransactionLogger gid and branchId as fields, through a Nest Logger', () => {
    const out = memoryDestination();
    Logger.overrideLogger(new JsonLogger({ level: 'debug', instance: 'i', destination: out.stream }));
    const nestLogger = new Logger('TransactionEngine');
    const txLogger = forTransaction(nestLogger, 'order-1');
    txLogger.warn('phase-2 result not written');
    txLogger.branch('b2').debug('bank try: ok', { phase: 'try', durationMs: 4 });
    txLogger.error('phase-2 delivery failed');
    expect(out.lines()).toEqual([
      expect.objectContaining({ level: 'warn', context: 'TransactionEngine', gid: 'order-1', msg: 'phase-2 result not written' }),
      expect.objectContaining({ level: 'debug', gid: 'order-1', branchId: 'b2', phase: 'try', durationMs: 4, msg: 'bank try: ok' }),
      expect.objectContaining({ level: 'error', context: 'TransactionEngine', gid: 'order-1', msg: 'phase-2 delivery failed' }),
    ]);
    expect(out.lines()[0]).not.toHaveProperty('branchId');
  });
});
