import type { ErrorCode } from '@nest-dtx/protocol';
import type { LoadedTx } from '../store/records.js';

/** No transaction has this gid. */
export class TransactionNotFoundError extends Error {
  constructor(readonly gid: string) {
    super(`transaction ${gid} not found`);
    this.name = 'TransactionNotFoundError';
  }
}

/** The state machine refused the move (PROTOCOL.md 2); `loaded` is the transaction as it was when refused. */
export class TransactionRefusedError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly loaded: LoadedTx,
    /** Why, when it is more than the code says. */
    readonly explanation?: string,
  ) {
    super(explanation ?? `refused: ${code}`);
    this.name = 'TransactionRefusedError';
  }
}

/** An interactive transaction already holds MAX_BRANCHES_PER_TRANSACTION branches. */
export class TooManyBranchesError extends Error {
  constructor(
    readonly gid: string,
    readonly limit: number,
  ) {
    super(`transaction ${gid} already holds ${limit} branches, the most one transaction may hold (MAX_BRANCHES_PER_TRANSACTION)`);
    this.name = 'TooManyBranchesError';
  }
}

/** A begin request its mode cannot take (PROTOCOL.md 3.1): `field` names the part at fault, as the client sent it. */
export class InvalidRequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidRequestError';
  }
}

/** No plug-in runs this mode (a mode of the protocol's vocabulary this coordinator does not run yet). */
export class ModeNotSupportedError extends Error {
  constructor(readonly mode: string) {
    super(`mode ${mode} is not supported`);
    this.name = 'ModeNotSupportedError';
  }
}

/** Admission control refused a begin before anything was written: the participants it names are backed up. */
export class OverloadedError extends Error {
  constructor(
    readonly reason: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`${reason}; try again in ${retryAfterSeconds} s`);
    this.name = 'OverloadedError';
  }
}

/** The transaction has no branch of this id (PROTOCOL.md 3.6: a reported outcome names one). */
export class BranchNotFoundError extends Error {
  constructor(
    readonly gid: string,
    readonly branchId: string,
  ) {
    super(`transaction ${gid} has no branch ${branchId}`);
    this.name = 'BranchNotFoundError';
  }
}

/** A reported outcome (PROTOCOL.md 3.6) from an API key that does not own the branch's participant name (4). */
export class NotParticipantOwnerError extends Error {
  constructor(
    readonly branchId: string,
    readonly participant: string,
  ) {
    super(`branch ${branchId} belongs to participant ${participant}, whose name belongs to another API key`);
    this.name = 'NotParticipantOwnerError';
  }
}

/**
 * Another instance (or a call of this one) is driving the transaction under a live lease and
 * kept it past the wait: a reported outcome is not written under it. Send it again shortly.
 */
export class TransactionBusyError extends Error {
  constructor(
    readonly gid: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`transaction ${gid} is being driven by a coordinator instance right now; send the report again in ${retryAfterSeconds} s`);
    this.name = 'TransactionBusyError';
  }
}
