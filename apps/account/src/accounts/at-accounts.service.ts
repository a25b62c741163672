import { Injectable } from '@nestjs/common';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload, MoneyMovePayload } from '@app/demo-support';
import { AtAction, BusinessFailure, TransactionParticipant, type BranchContext } from '@nest-dtx/sdk';
import { AccountEntity } from './account.entity.js';

/**
 * Debit and credit in AT mode: written as if there were no distributed transaction, with plain
 * TypeORM repository calls and no confirm, cancel or compensation method. The SDK's triggers on
 * `accounts` (the module's `at.tables`) record each row's before and after images and lock the
 * row for the global transaction; a rollback restores the before images.
 *
 * The row is read FOR UPDATE (`pessimistic_write`), as any read-modify-write must be under
 * READ COMMITTED, so two concurrent transfers cannot both start from the same balance.
 */
@Injectable()
@TransactionParticipant()
export class AtAccountsService {
  @AtAction({ name: 'at-debit' })
  async debit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parsePayload(MoneyMovePayload, payload);
    const accounts = manager.getRepository(AccountEntity);
    const account = await accounts.findOne({ where: { id: accountId }, lock: { mode: 'pessimistic_write' } });
    if (!account) throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
    if (account.balance - account.frozen < amount) throw new BusinessFailure(`insufficient funds on ${accountId}`, { reason: 'insufficient_funds' });
    account.balance -= amount;
    await accounts.save(account);
    return { accountId, debited: amount };
  }

  @AtAction({ name: 'at-credit' })
  async credit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parsePayload(MoneyMovePayload, payload);
    const accounts = manager.getRepository(AccountEntity);
    const account = await accounts.findOne({ where: { id: accountId }, lock: { mode: 'pessimistic_write' } });
    if (!account) throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
    account.balance += amount;
    await accounts.save(account);
    return { accountId, credited: amount };
  }
}
