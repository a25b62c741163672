import { ConflictException, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { DataSource } from 'typeorm';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload } from '@app/demo-support';
import { BusinessFailure, SagaAction, TccAction, TransactionParticipant, XaAction, isAtRowLocked, queryRows, type BranchContext } from '@nest-dtx/sdk';
import { AccountEntity } from './account.entity.js';
import { MoneyMovePayload, type OpenAccountDto } from '@app/demo-support';

const parseMove = (payload: Json): MoneyMovePayload => parsePayload(MoneyMovePayload, payload);

const tracer = trace.getTracer('account-service');

/**
 * The service's own span for its business work (docs/observability.md): with OpenTelemetry on in
 * this process, a child of the SDK's span of the call, and so of the coordinator's call.
 */
function inSpan<T>(name: string, accountId: string, work: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes: { 'account.id': accountId } }, async (span) => {
    try {
      return await work();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

export interface AccountsSummary {
  accounts: AccountEntity[];
  totalBalance: number;
  totalFrozen: number;
  pendingCredits: number;
}

/**
 * Accounts with debit and credit in every mode. TCC: try reserves, confirm applies, cancel
 * releases. Saga: the step applies at once, its compensation gives it back. 2PC: the change is
 * made inside a Postgres prepared transaction that the coordinator commits or rolls back.
 * The SDK makes each phase idempotent and safe against null compensation and hanging.
 */
@Injectable()
@TransactionParticipant()
export class AccountsService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @TccAction({ name: 'debit', confirm: 'confirmDebit', cancel: 'cancelDebit' })
  async tryDebit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    return inSpan('account.freeze', accountId, async () => {
      const rows = await queryRows(
        manager,
        `UPDATE accounts SET frozen = frozen + $2 WHERE id = $1 AND balance - frozen >= $2 RETURNING balance, frozen`,
        [accountId, amount],
      );
      if (rows.length === 0) await this.refuseDebit(manager, accountId);
      return { accountId, frozen: amount };
    });
  }

  async confirmDebit(payload: Json, { manager }: BranchContext): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await manager.query(`UPDATE accounts SET balance = balance - $2, frozen = frozen - $2 WHERE id = $1`, [accountId, amount]);
  }

  async cancelDebit(payload: Json, { manager }: BranchContext): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await manager.query(`UPDATE accounts SET frozen = frozen - $2 WHERE id = $1`, [accountId, amount]);
  }

  @TccAction({ name: 'credit', confirm: 'confirmCredit', cancel: 'cancelCredit' })
  async tryCredit(payload: Json, { manager, gid, branchId }: BranchContext): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    const exists: unknown[] = await manager.query(`SELECT 1 FROM accounts WHERE id = $1`, [accountId]);
    if (exists.length === 0) throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
    await manager.query(`INSERT INTO pending_credits (gid, branch_id, account_id, amount) VALUES ($1, $2, $3, $4)`, [
      gid,
      branchId,
      accountId,
      amount,
    ]);
    return { accountId, pending: amount };
  }

  async confirmCredit(_payload: Json, { manager, gid, branchId }: BranchContext): Promise<void> {
    await manager.query(
      `WITH p AS (DELETE FROM pending_credits WHERE gid = $1 AND branch_id = $2 RETURNING account_id, amount)
       UPDATE accounts a SET balance = a.balance + p.amount FROM p WHERE a.id = p.account_id`,
      [gid, branchId],
    );
  }

  async cancelCredit(_payload: Json, { manager, gid, branchId }: BranchContext): Promise<void> {
    await manager.query(`DELETE FROM pending_credits WHERE gid = $1 AND branch_id = $2`, [gid, branchId]);
  }

  @SagaAction({ name: 'debit', compensate: 'compensateDebit' })
  async executeDebit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.withdraw(manager, accountId, amount);
    return { accountId, debited: amount };
  }

  async compensateDebit(payload: Json, { manager }: BranchContext): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await manager.query(`UPDATE accounts SET balance = balance + $2 WHERE id = $1`, [accountId, amount]);
  }

  @SagaAction({ name: 'credit', compensate: 'compensateCredit' })
  async executeCredit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.deposit(manager, accountId, amount);
    return { accountId, credited: amount };
  }

  async compensateCredit(payload: Json, { manager }: BranchContext): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await manager.query(`UPDATE accounts SET balance = balance - $2 WHERE id = $1`, [accountId, amount]);
  }

  /** 2PC: the withdrawal happens inside a prepared transaction; the SDK commits or rolls it back. */
  @XaAction({ name: 'debit' })
  async prepareDebit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.withdraw(manager, accountId, amount);
    return { accountId, debited: amount };
  }

  @XaAction({ name: 'credit' })
  async prepareCredit(payload: Json, { manager }: BranchContext): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.deposit(manager, accountId, amount);
    return { accountId, credited: amount };
  }

  private withdraw(manager: BranchContext['manager'], accountId: string, amount: number): Promise<void> {
    return inSpan('account.withdraw', accountId, async () => {
      const rows = await queryRows(
        manager,
        `UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance - frozen >= $2 RETURNING balance`,
        [accountId, amount],
      );
      if (rows.length === 0) await this.refuseDebit(manager, accountId);
    });
  }

  private deposit(manager: BranchContext['manager'], accountId: string, amount: number): Promise<void> {
    return inSpan('account.deposit', accountId, async () => {
      const rows = await queryRows(manager, `UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance`, [accountId, amount]);
      if (rows.length === 0) throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
    });
  }

  /** Why a debit could not take the money: no such account, or not enough available. */
  private async refuseDebit(manager: BranchContext['manager'], accountId: string): Promise<never> {
    const exists: unknown[] = await manager.query(`SELECT 1 FROM accounts WHERE id = $1`, [accountId]);
    throw exists.length === 0
      ? new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' })
      : new BusinessFailure(`insufficient funds on ${accountId}`, { reason: 'insufficient_funds' });
  }

  /**
   * Opens an account, or resets its balance: a plain write, outside any global transaction. On
   * an account an AT transfer holds, the SDK's trigger refuses it (no dirty write): 409.
   */
  async open(dto: OpenAccountDto): Promise<AccountEntity> {
    try {
      await this.db.query(`INSERT INTO accounts (id, balance) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance WHERE accounts.frozen = 0`, [
        dto.id,
        dto.balance,
      ]);
    } catch (error) {
      if (isAtRowLocked(error)) throw new ConflictException(`account ${dto.id} is held by a global transaction (AT mode) until it ends`);
      throw error;
    }
    return this.db.getRepository(AccountEntity).findOneByOrFail({ id: dto.id });
  }

  async find(id: string): Promise<AccountEntity | null> {
    return this.db.getRepository(AccountEntity).findOneBy({ id });
  }

  async summary(): Promise<AccountsSummary> {
    const accounts = await this.db.getRepository(AccountEntity).find({ order: { id: 'ASC' } });
    const pending: { total: string | null }[] = await this.db.query(`SELECT sum(amount) AS total FROM pending_credits`);
    return {
      accounts,
      totalBalance: accounts.reduce((sum, a) => sum + a.balance, 0),
      totalFrozen: accounts.reduce((sum, a) => sum + a.frozen, 0),
      pendingCredits: Number(pending[0]?.total ?? 0),
    };
  }
}
