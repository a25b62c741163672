import type { ErrorBody, ErrorCode } from '@nest-dtx/protocol';

/** An error answer of the coordinator, with its stable code (PROTOCOL.md 3). */
export class CoordinatorError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode | 'NETWORK';
  readonly body: ErrorBody | null;

  constructor(statusCode: number, body: ErrorBody | null, message?: string) {
    super(message ?? body?.message ?? `coordinator answered ${statusCode}`);
    this.name = 'CoordinatorError';
    this.statusCode = statusCode;
    this.code = body?.error ?? 'NETWORK';
    this.body = body;
  }
}
