import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';
import { AdminPageQueryDto, NAME_PATTERN } from '@nest-dtx/protocol';

/** GET /admin/locks query: the admin lists' paging, and the participant filter of GET /admin/transactions. */
export class ListLocksQueryDto extends AdminPageQueryDto {
  @ApiPropertyOptional({ description: 'Only the locks of branches on this participant.', pattern: NAME_PATTERN.source, maxLength: 64 })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: '$property must match [A-Za-z0-9_.:-]{1,64}' })
  participant?: string;
}
