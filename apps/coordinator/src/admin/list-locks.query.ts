import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { NAME_PATTERN } from '@nest-dtx/protocol';

/** GET /admin/locks query: the same rules as GET /admin/transactions for the fields they share. */
export class ListLocksQueryDto {
  @ApiPropertyOptional({ description: 'Only the locks of branches on this participant.', pattern: NAME_PATTERN.source })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, { message: '$property must match [A-Za-z0-9_.:-]{1,64}' })
  participant?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 200, default: 50, description: 'Page size.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: 'The `nextCursor` of the previous page.' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,600}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;
}
