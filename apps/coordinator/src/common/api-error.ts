import { HttpException } from '@nestjs/common';
import { ErrorCode, type ErrorBody } from '@nest-dtx/protocol';

/** An error answer with a stable code (PROTOCOL.md 3). Extra fields join the body. */
export class ApiError extends HttpException {
  constructor(status: number, code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    const body: ErrorBody = { statusCode: status, error: code, message, ...extra };
    super(body, status);
  }

  static notFound(gid: string): ApiError {
    return new ApiError(404, ErrorCode.TX_NOT_FOUND, `transaction ${gid} not found`);
  }
}
