import { MSG_CHECK_BRANCH_ID, type Json, type PhaseCallBody } from '@nest-dtx/protocol';

/**
 * The action every participant registers for mode msg, which answers the coordinator's
 * check-back (PROTOCOL.md 3.1) from the barrier alone: did the local transaction of message
 * `gid`, run with BranchBarrier.runLocal, commit? `MsgBuilder.doAndSubmit` names it as the
 * message's check target. No business action may take this name.
 */
export const DTX_MSG_CHECK_ACTION = 'dtx-msg-check';

/**
 * The barrier call of the caller's local transaction for message `gid`: the phase-1 row of its
 * `check` branch. `execute` because phaseKind('execute') is 'phase1': the row is inserted with
 * origin phase1, or, when a check-back took the slot first, found with origin rollback (refused).
 */
export function localTransactionCall(gid: string): PhaseCallBody {
  return { gid, branchId: MSG_CHECK_BRANCH_ID, mode: 'msg', action: DTX_MSG_CHECK_ACTION, phase: 'execute', payload: {} };
}

/** The check-back call for message `gid`, as the coordinator sends it (and as the caller asks itself). */
export function checkCall(gid: string): PhaseCallBody {
  return { gid, branchId: MSG_CHECK_BRANCH_ID, mode: 'msg', action: DTX_MSG_CHECK_ACTION, phase: 'check', payload: {} };
}

/**
 * A local transaction of a message (BranchBarrier.runLocal) refused by the barrier: a check-back
 * already answered that this message's local transaction did not commit (and the coordinator
 * rolled the message back, or will), so this one must not commit either. Its work did not run.
 */
export class LocalTransactionRefused extends Error {
  constructor(
    readonly gid: string,
    message: string,
    readonly details: Json,
  ) {
    super(message);
    this.name = 'LocalTransactionRefused';
  }
}
