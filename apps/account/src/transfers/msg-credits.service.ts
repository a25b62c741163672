import { Injectable } from '@nestjs/common';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload, MoneyMovePayload } from '@app/demo-support';
import { BusinessFailure, MsgAction, TransactionParticipant, queryRows, type BranchContext } from '@nest-dtx/sdk';

/**
 * The receiving side of a msg transfer: the credit a message delivers once the sending bank's
 * debit committed. It runs under the barrier, so a redelivered message credits once.
 */
@Injectable()
@TransactionParticipant()
export class MsgCredits {
  @MsgAction({ name: 'credit' })
  async credit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parsePayload(MoneyMovePayload, payload);
    const rows = await queryRows(manager, `UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance`, [accountId, amount]);
    // A message must be delivered in the end: a missing account is the sender's bug, retried
    // and flagged for an operator by the coordinator.
    if (rows.length === 0) throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
    return { accountId, credited: amount };
  }
}
