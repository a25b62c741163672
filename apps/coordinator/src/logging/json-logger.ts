import type { LoggerService, LogLevel } from '@nestjs/common';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { activeSpanContext } from '../telemetry/tracing.js';
import { pinoLevelOf, toLogRecord, type LogLevelName, type NestLevel } from './log-record.js';

export interface JsonLoggerOptions {
  level: LogLevelName;
  /** This coordinator's INSTANCE_ID, on every line. */
  instance: string;
  /** Where lines go; stdout by default (tests pass a stream). */
  destination?: DestinationStream;
}

/** Whether the process's JsonLogger writes debug lines; true until one says otherwise (tests with Nest's own logger). */
let debugWritten = true;
export const debugLogged = (): boolean => debugWritten;

/**
 * Nest's LoggerService on pino: one JSON object per line on stdout with `level` (a name),
 * `time` (ISO-8601), `instance`, `context`, `msg`, and the fields of structured messages
 * (`gid`, `branchId`, ...), and `trace_id`, `span_id`, `trace_flags` when written inside a span. pino writes synchronously to stdout, so a line logged just before
 * a crash is not lost.
 */
export class JsonLogger implements LoggerService {
  private readonly pino: PinoLogger;

  constructor(options: JsonLoggerOptions) {
    this.pino = pino(
      {
        level: pinoLevelOf(options.level),
        base: { instance: options.instance, pid: process.pid },
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      options.destination ?? pino.destination({ fd: 1, sync: true }),
    );
    debugWritten = this.pino.isLevelEnabled('debug');
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('log', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('verbose', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** Nest calls this with the levels to keep; the least verbose of them sets pino's level. */
  setLogLevels(levels: LogLevel[]): void {
    const order: NestLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];
    const lowest = order.find((level) => levels.includes(level));
    this.pino.level = lowest ? pinoLevelOf(lowest) : 'silent';
    debugWritten = this.pino.isLevelEnabled('debug');
  }

  private write(level: NestLevel, message: unknown, params: unknown[]): void {
    const pinoLevel = pinoLevelOf(level);
    // Skip the parsing of lines below the level (debug lines on the hot path).
    if (!this.pino.isLevelEnabled(pinoLevel)) return;
    const record = toLogRecord(level, message, params);
    // Written inside a span (tracing on): the span's ids, so the line and the trace find each other.
    const span = activeSpanContext();
    const trace = span ? { trace_id: span.traceId, span_id: span.spanId, trace_flags: span.traceFlags & 1 ? '01' : '00' } : undefined;
    this.pino[pinoLevel]({ context: record.context, ...trace, ...record.fields, ...(record.stack ? { stack: record.stack } : {}) }, record.msg);
  }
}
