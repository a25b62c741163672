import { Injectable, type PipeTransform } from '@nestjs/common';
import { ErrorCode, ID_PATTERN } from '@app/protocol';
import { ApiError } from './api-error.js';

/** Checks a gid path parameter against its charset and length (PROTOCOL.md 3.1). */
@Injectable()
export class GidPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!ID_PATTERN.test(value)) {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'gid must match [A-Za-z0-9_.:-]{1,128}', { field: 'gid' });
    }
    return value;
  }
}
