import type { Logger } from '@nestjs/common';
import { debugLogged } from './json-logger.js';
import { structuredMessage, type LogFields, type TransactionLogFields } from './log-record.js';

/**
 * A view of a Nest `Logger` for one transaction (or one of its branches): every line carries
 * `gid` (and `branchId`) as fields, so operators filter logs by transaction instead of grepping text.
 */
export class TransactionLogger {
  constructor(
    private readonly logger: Logger,
    private readonly fields: TransactionLogFields,
  ) {}

  /** The same transaction, narrowed to one branch. */
  branch(branchId: string): TransactionLogger {
    return new TransactionLogger(this.logger, { ...this.fields, branchId });
  }

  log(msg: string, extra: LogFields = {}): void {
    this.logger.log(structuredMessage(msg, { ...this.fields, ...extra }));
  }

  warn(msg: string, extra: LogFields = {}): void {
    this.logger.warn(structuredMessage(msg, { ...this.fields, ...extra }));
  }

  error(msg: string, extra: LogFields = {}): void {
    this.logger.error(structuredMessage(msg, { ...this.fields, ...extra }));
  }

  /** Debug lines sit on the hot path: below the level, not even the record is built. */
  debug(msg: string, extra: LogFields = {}): void {
    if (!debugLogged()) return;
    this.logger.debug(structuredMessage(msg, { ...this.fields, ...extra }));
  }
}

/** `forTransaction(this.logger, tx.gid).warn('...')`: the line has `gid` as a field. */
export function forTransaction(logger: Logger, gid: string, branchId?: string): TransactionLogger {
  return new TransactionLogger(logger, { gid, branchId });
}
