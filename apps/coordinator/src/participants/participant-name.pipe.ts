import { Injectable, type PipeTransform } from '@nestjs/common';
import { ErrorCode, NAME_PATTERN } from '@app/protocol';
import { ApiError } from '../common/api-error.js';

/** Checks a participant name path parameter against its charset and length (PROTOCOL.md 4). */
@Injectable()
export class ParticipantNamePipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!NAME_PATTERN.test(value)) {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'name must match [A-Za-z0-9_.:-]{1,64}', { field: 'name' });
    }
    return value;
  }
}
