import type { PipeTransform } from '@nestjs/common';
import { ErrorCode, ID_PATTERN, NAME_PATTERN } from '@nest-dtx/protocol';
import { ApiError } from './api-error.js';

/** Checks a path parameter against its charset and length; a 400 naming the parameter otherwise. Used as an instance: `@Param('gid', GidPipe)`. */
class PathParamPipe implements PipeTransform<string, string> {
  constructor(
    private readonly field: string,
    private readonly pattern: RegExp,
    private readonly shape: string,
  ) {}

  transform(value: string): string {
    if (!this.pattern.test(value)) {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `${this.field} must match ${this.shape}`, { field: this.field });
    }
    return value;
  }
}

/** A gid path parameter (PROTOCOL.md 3.1). */
export const GidPipe = new PathParamPipe('gid', ID_PATTERN, '[A-Za-z0-9_.:-]{1,128}');

/** A branchId path parameter (PROTOCOL.md 3.2). */
export const BranchIdPipe = new PathParamPipe('branchId', ID_PATTERN, '[A-Za-z0-9_.:-]{1,128}');

/** A participant name path parameter (PROTOCOL.md 4). */
export const ParticipantNamePipe = new PathParamPipe('name', NAME_PATTERN, '[A-Za-z0-9_.:-]{1,64}');
