import { ErrorCode } from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';
import {
  BranchNotFoundError,
  InvalidRequestError,
  NotParticipantOwnerError,
  ModeNotSupportedError,
  OverloadedError,
  TooManyBranchesError,
  TransactionBusyError,
  TransactionNotFoundError,
  TransactionRefusedError,
} from '../engine/errors.js';
import { UnresolvedParticipantError } from '../participants/unresolved-participant.error.js';
import { toTransactionView } from './transaction.view.js';

/** The API's answer to an engine refusal (PROTOCOL.md 3). */
export function refusalToApiError(error: TransactionRefusedError): ApiError {
  const { code, loaded } = error;
  const view = toTransactionView(loaded);
  switch (code) {
    case ErrorCode.WRONG_MODE:
      return new ApiError(400, code, `not allowed on a ${loaded.tx.mode} transaction`);
    case ErrorCode.TX_NOT_ACTIVE:
      return new ApiError(409, code, error.explanation ?? `transaction ${loaded.tx.gid} is ${loaded.tx.status}`, { transaction: view });
    case ErrorCode.TX_ALREADY_DECIDED:
      return new ApiError(409, code, `transaction ${loaded.tx.gid} is already ${loaded.tx.status}`, { transaction: view });
    default:
      return new ApiError(409, code, error.message, { transaction: view });
  }
}

/** Engine errors in the API's words; anything else passes unchanged. */
export function asApiError(error: unknown): unknown {
  if (error instanceof TransactionNotFoundError) return ApiError.notFound(error.gid);
  if (error instanceof TransactionRefusedError) return refusalToApiError(error);
  if (error instanceof TooManyBranchesError) return new ApiError(409, ErrorCode.TOO_MANY_BRANCHES, error.message, { limit: error.limit });
  if (error instanceof InvalidRequestError) return new ApiError(400, ErrorCode.VALIDATION_FAILED, error.message, { field: error.field });
  if (error instanceof UnresolvedParticipantError) return new ApiError(400, error.code, error.message, { field: error.field });
  if (error instanceof ModeNotSupportedError) return new ApiError(400, ErrorCode.MODE_NOT_SUPPORTED, error.message, { field: 'mode' });
  if (error instanceof OverloadedError) return new ApiError(503, ErrorCode.OVERLOADED, error.message, { retryAfterSeconds: error.retryAfterSeconds });
  if (error instanceof BranchNotFoundError) return new ApiError(404, ErrorCode.NOT_FOUND, error.message, { field: 'branchId' });
  if (error instanceof NotParticipantOwnerError) return new ApiError(403, ErrorCode.FORBIDDEN, error.message, { field: 'branchId' });
  if (error instanceof TransactionBusyError) return new ApiError(503, ErrorCode.OVERLOADED, error.message, { retryAfterSeconds: error.retryAfterSeconds });
  return error;
}
