import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** POST /transfers/msg: money from an account here to an account at another bank, as a two-phase message. */
export class MsgTransferDto {
  /** The message's gid; a fresh one by default. The same gid again finds the same message. */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,128}$/)
  gid?: string;

  /** The account debited here, in the local transaction. */
  @IsString() @Matches(ID)
  from!: string;

  /** The account credited at the other bank, by the message's branch. */
  @IsString() @Matches(ID)
  to!: string;

  /** The other bank's participant name. */
  @IsString() @Matches(ID)
  toParticipant!: string;

  @IsInt() @Min(1) @Max(1_000_000_000_000)
  amount!: number;

  /** How long the message may stay unsubmitted before the coordinator checks back. */
  @IsOptional() @IsInt() @Min(100) @Max(3_600_000)
  timeoutMs?: number;

  /** Test hook: commit the local transaction but never submit, leaving the message to the check-back. */
  @IsOptional() @IsBoolean()
  skipSubmit?: boolean;

  /** Test hook: begin the message and stop there, as a caller that dies before its local transaction. */
  @IsOptional() @IsBoolean()
  failBeforeLocal?: boolean;
}
