import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { TransactionView } from '@nest-dtx/protocol';
import { BranchBarrier, BusinessFailure, DTX_MSG_CHECK_ACTION, TransactionClient, queryRows } from '@nest-dtx/sdk';
import type { MsgTransferDto } from './msg-transfer.dto.js';

/**
 * A transfer to another bank as a two-phase message: the debit is this bank's local
 * transaction, the credit the message's one branch, delivered only once the debit committed.
 */
@Injectable()
export class MsgTransfersService {
  constructor(
    private readonly client: TransactionClient,
    private readonly barrier: BranchBarrier<EntityManager>,
  ) {}

  async transfer(dto: MsgTransferDto): Promise<TransactionView> {
    const message = this.client
      .msg({ gid: dto.gid, timeoutMs: dto.timeoutMs })
      .add(dto.toParticipant, 'credit', { accountId: dto.to, amount: dto.amount });
    const debit = (tx: EntityManager) => this.debit(tx, dto.from, dto.amount);
    if (!dto.skipSubmit && !dto.failBeforeLocal) return message.doAndSubmit(this.barrier, debit);

    // The test hooks: the steps of doAndSubmit, stopped short.
    const begun = await message.prepare({ participant: this.barrier.participant, action: DTX_MSG_CHECK_ACTION });
    if (dto.failBeforeLocal) return begun;
    await this.barrier.runLocal(message.gid, debit);
    return begun;
  }

  private async debit(manager: EntityManager, accountId: string, amount: number): Promise<void> {
    const rows = await queryRows(manager, `UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance - frozen >= $2 RETURNING balance`, [
      accountId,
      amount,
    ]);
    if (rows.length === 0) throw new BusinessFailure(`insufficient funds on ${accountId} (or no such account)`, { reason: 'insufficient_funds' });
  }
}
