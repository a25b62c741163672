import type { Level } from 'pino';

/** The LOG_LEVEL values (Nest's level names), least to most verbose. */
export const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** Nest's level names, including the ones LOG_LEVEL cannot select, as pino levels. */
const PINO_LEVEL_OF_NEST_LEVEL = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
} as const satisfies Record<string, Level>;
export type NestLevel = keyof typeof PINO_LEVEL_OF_NEST_LEVEL;

export function pinoLevelOf(level: NestLevel): Level {
  return PINO_LEVEL_OF_NEST_LEVEL[level];
}

/** A value a structured log field may hold: what JSON can show without surprises. */
export type LogFieldValue = string | number | boolean | null;
export type LogFields = Record<string, LogFieldValue | undefined>;

/** The fields of a line about a transaction (and one of its branches). */
export interface TransactionLogFields extends LogFields {
  gid: string;
  branchId?: string;
}

/**
 * A message with fields, passed to a Nest `Logger` in place of a string: the JSON logger writes
 * `msg` as the message and every other key as a field of the line.
 */
export interface StructuredMessage extends LogFields {
  msg: string;
}

export function structuredMessage(msg: string, fields: LogFields): StructuredMessage {
  const message: StructuredMessage = { msg };
  for (const [key, value] of Object.entries(fields)) {
    // `msg` is the message itself; an undefined field (branchId of a transaction-wide line) is left out.
    if (value !== undefined && key !== 'msg') message[key] = value;
  }
  return message;
}

/** One line as the JSON logger writes it, before pino adds level, time and the instance. */
export interface LogRecord {
  msg: string;
  context?: string;
  fields: Record<string, unknown>;
  /** An error's stack trace (error lines), or the Error itself when one was logged. */
  stack?: string;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Error);

/** Keys the logger itself writes on every line: a field of the same name would repeat or hide them. */
const RESERVED_KEYS = new Set(['level', 'time', 'pid', 'instance', 'context', 'msg', 'stack']);

const looksLikeStack = (value: string): boolean => /\n\s+at /.test(value);

const textOf = (value: unknown): string => {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.message;
  if (value === undefined) return '';
  try {
    // undefined for a function or a symbol: name its type rather than print nothing.
    return JSON.stringify(value) ?? `[${typeof value}]`;
  } catch {
    return `[unserialisable ${typeof value}]`; // a cycle, or a BigInt
  }
};

/**
 * Reads Nest's logging convention into a record: `log(message, ...params)` where a `Logger`
 * with a context appends that context as the last param, and `error(message, stack?, context?)`.
 * A plain-object message is a {@link StructuredMessage} (or any object: its keys become fields).
 */
export function toLogRecord(level: NestLevel, message: unknown, params: readonly unknown[]): LogRecord {
  const rest = [...params];
  let context: string | undefined;
  let stack: string | undefined;
  const last = rest.at(-1);
  // error('msg', stack) without a context: Nest's own ConsoleLogger tells them apart the same way.
  const lastIsStack = level === 'error' && rest.length === 1 && typeof last === 'string' && looksLikeStack(last);
  if (rest.length > 0 && typeof last === 'string' && !lastIsStack) {
    context = last;
    rest.pop();
  } else if (rest.length > 0 && last === undefined) {
    rest.pop();
  }
  if ((level === 'error' || level === 'fatal') && typeof rest[0] === 'string') {
    stack = rest.shift() as string;
  } else if (rest[0] === undefined && rest.length > 0) {
    rest.shift();
  }

  const fields: Record<string, unknown> = {};
  let msg: string;
  if (isPlainObject(message)) {
    const { msg: text, message: altText, ...others } = message;
    msg = textOf(text ?? altText ?? '');
    for (const [key, value] of Object.entries(others)) fields[RESERVED_KEYS.has(key) ? `field_${key}` : key] = value;
  } else {
    msg = textOf(message);
    if (message instanceof Error) stack ??= message.stack;
  }
  // Anything else Nest or a library passed along is kept rather than lost.
  if (rest.length > 0) fields.extra = rest.map(textOf);
  return { msg, context, fields, stack };
}
