/** The bank demos' account payloads, shared by the account service (TypeORM) and the MariaDB bank (mysql2). */
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';

const MAX_CENTS = 1_000_000_000_000;

/** Payload of the debit and credit actions. */
export class MoneyMovePayload {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/)
  accountId!: string;

  @IsInt() @Min(1) @Max(MAX_CENTS)
  amount!: number;
}

export class OpenAccountDto {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/)
  id!: string;

  @IsInt() @Min(0) @Max(MAX_CENTS)
  balance!: number;
}
