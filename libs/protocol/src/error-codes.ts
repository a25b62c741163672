/** Stable error codes of the REST API (PROTOCOL.md 3). Clients match on these, never on messages. */
export const ErrorCode = {
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  INVALID_JSON: 'INVALID_JSON',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  NOT_FOUND: 'NOT_FOUND',
  TX_NOT_FOUND: 'TX_NOT_FOUND',
  GID_CONFLICT: 'GID_CONFLICT',
  UNKNOWN_PARTICIPANT: 'UNKNOWN_PARTICIPANT',
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  WRONG_MODE: 'WRONG_MODE',
  MODE_NOT_SUPPORTED: 'MODE_NOT_SUPPORTED',
  TX_NOT_ACTIVE: 'TX_NOT_ACTIVE',
  TX_ALREADY_DECIDED: 'TX_ALREADY_DECIDED',
  CANNOT_COMMIT: 'CANNOT_COMMIT',
  BRANCH_FAILED: 'BRANCH_FAILED',
  BRANCH_UNKNOWN: 'BRANCH_UNKNOWN',
  BRANCH_CONFLICT: 'BRANCH_CONFLICT',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_READY: 'NOT_READY',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The body of every error answer. */
export interface ErrorBody {
  statusCode: number;
  error: ErrorCode;
  message: string;
  /** The offending field, for validation errors. */
  field?: string;
  [extra: string]: unknown;
}
