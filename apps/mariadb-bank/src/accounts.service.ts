import { Inject, Injectable } from '@nestjs/common';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Json } from '@nest-dtx/protocol';
import { MoneyMovePayload, parsePayload, type OpenAccountDto } from '@app/demo-support';
import { BusinessFailure, SagaAction, TccAction, TransactionParticipant, XaAction, type BranchContext } from '@nest-dtx/sdk';
import { MYSQL_POOL } from './database.js';

const parseMove = (payload: Json): MoneyMovePayload => parsePayload(MoneyMovePayload, payload);

/** What the business methods receive: the barrier's local transaction, a mysql2 connection. */
type Context = BranchContext<PoolConnection>;

export interface Account {
  id: string;
  balance: number;
  frozen: number;
}

export interface AccountsSummary {
  accounts: Account[];
  totalBalance: number;
  totalFrozen: number;
  pendingCredits: number;
}

/** Rows changed by an UPDATE or DELETE through mysql2. */
async function changed(connection: PoolConnection, sql: string, values: unknown[]): Promise<number> {
  const [header] = await connection.query<ResultSetHeader>(sql, values);
  return header.affectedRows;
}

/**
 * Bank B of the polyglot demo: the same accounts as the account service (debit and credit in
 * TCC, saga and 2PC), kept in MariaDB and written through plain mysql2. The actions are
 * declared exactly as on the TypeORM bank; only the module's data layer differs, and each
 * method receives the mysql2 connection of its local transaction as `tx`. 2PC is XA:
 * XA START … XA PREPARE, finished by the coordinator's decision.
 */
@Injectable()
@TransactionParticipant()
export class AccountsService {
  constructor(@Inject(MYSQL_POOL) private readonly pool: Pool) {}

  @TccAction({ name: 'debit', confirm: 'confirmDebit', cancel: 'cancelDebit' })
  async tryDebit(payload: Json, { tx }: Context): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    const frozen = await changed(tx, `UPDATE accounts SET frozen = frozen + ? WHERE id = ? AND balance - frozen >= ?`, [amount, accountId, amount]);
    if (frozen === 0) await this.refuseDebit(tx, accountId);
    return { accountId, frozen: amount };
  }

  async confirmDebit(payload: Json, { tx }: Context): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await tx.query(`UPDATE accounts SET balance = balance - ?, frozen = frozen - ? WHERE id = ?`, [amount, amount, accountId]);
  }

  async cancelDebit(payload: Json, { tx }: Context): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await tx.query(`UPDATE accounts SET frozen = frozen - ? WHERE id = ?`, [amount, accountId]);
  }

  @TccAction({ name: 'credit', confirm: 'confirmCredit', cancel: 'cancelCredit' })
  async tryCredit(payload: Json, { tx, gid, branchId }: Context): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.mustExist(tx, accountId);
    await tx.query(`INSERT INTO pending_credits (gid, branch_id, account_id, amount) VALUES (?, ?, ?, ?)`, [gid, branchId, accountId, amount]);
    return { accountId, pending: amount };
  }

  async confirmCredit(_payload: Json, { tx, gid, branchId }: Context): Promise<void> {
    await tx.query(
      `UPDATE accounts a JOIN pending_credits p ON a.id = p.account_id SET a.balance = a.balance + p.amount WHERE p.gid = ? AND p.branch_id = ?`,
      [gid, branchId],
    );
    await tx.query(`DELETE FROM pending_credits WHERE gid = ? AND branch_id = ?`, [gid, branchId]);
  }

  async cancelCredit(_payload: Json, { tx, gid, branchId }: Context): Promise<void> {
    await tx.query(`DELETE FROM pending_credits WHERE gid = ? AND branch_id = ?`, [gid, branchId]);
  }

  @SagaAction({ name: 'debit', compensate: 'compensateDebit' })
  async executeDebit(payload: Json, { tx }: Context): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.withdraw(tx, accountId, amount);
    return { accountId, debited: amount };
  }

  async compensateDebit(payload: Json, { tx }: Context): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await tx.query(`UPDATE accounts SET balance = balance + ? WHERE id = ?`, [amount, accountId]);
  }

  @SagaAction({ name: 'credit', compensate: 'compensateCredit' })
  async executeCredit(payload: Json, { tx }: Context): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.deposit(tx, accountId, amount);
    return { accountId, credited: amount };
  }

  async compensateCredit(payload: Json, { tx }: Context): Promise<void> {
    const { accountId, amount } = parseMove(payload);
    await tx.query(`UPDATE accounts SET balance = balance - ? WHERE id = ?`, [amount, accountId]);
  }

  /** 2PC: the withdrawal happens inside an XA transaction that the coordinator's decision finishes. */
  @XaAction({ name: 'debit' })
  async prepareDebit(payload: Json, { tx }: Context): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.withdraw(tx, accountId, amount);
    return { accountId, debited: amount };
  }

  @XaAction({ name: 'credit' })
  async prepareCredit(payload: Json, { tx }: Context): Promise<Json> {
    const { accountId, amount } = parseMove(payload);
    await this.deposit(tx, accountId, amount);
    return { accountId, credited: amount };
  }

  private async withdraw(tx: PoolConnection, accountId: string, amount: number): Promise<void> {
    const taken = await changed(tx, `UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance - frozen >= ?`, [amount, accountId, amount]);
    if (taken === 0) await this.refuseDebit(tx, accountId);
  }

  private async deposit(tx: PoolConnection, accountId: string, amount: number): Promise<void> {
    if ((await changed(tx, `UPDATE accounts SET balance = balance + ? WHERE id = ?`, [amount, accountId])) === 0) {
      throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
    }
  }

  private async mustExist(tx: PoolConnection, accountId: string): Promise<void> {
    const [rows] = await tx.query<RowDataPacket[]>(`SELECT 1 FROM accounts WHERE id = ?`, [accountId]);
    if (rows.length === 0) throw new BusinessFailure(`account ${accountId} does not exist`, { reason: 'no_account' });
  }

  /** Why a debit could not take the money: no such account, or not enough available. */
  private async refuseDebit(tx: PoolConnection, accountId: string): Promise<never> {
    await this.mustExist(tx, accountId);
    throw new BusinessFailure(`insufficient funds on ${accountId}`, { reason: 'insufficient_funds' });
  }

  async open(dto: OpenAccountDto): Promise<Account> {
    // Re-opening sets the balance again, unless money is reserved on it.
    await this.pool.query(`INSERT INTO accounts (id, balance) VALUES (?, ?) ON DUPLICATE KEY UPDATE balance = IF(frozen = 0, VALUES(balance), balance)`, [
      dto.id,
      dto.balance,
    ]);
    return (await this.find(dto.id))!;
  }

  async find(id: string): Promise<Account | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT id, balance, frozen FROM accounts WHERE id = ?`, [id]);
    return rows[0] ? toAccount(rows[0]) : null;
  }

  async summary(): Promise<AccountsSummary> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT id, balance, frozen FROM accounts ORDER BY id`);
    const [pending] = await this.pool.query<RowDataPacket[]>(`SELECT COALESCE(SUM(amount), 0) AS total FROM pending_credits`);
    const accounts = rows.map(toAccount);
    return {
      accounts,
      totalBalance: accounts.reduce((sum, a) => sum + a.balance, 0),
      totalFrozen: accounts.reduce((sum, a) => sum + a.frozen, 0),
      pendingCredits: Number(pending[0]?.total ?? 0),
    };
  }
}

/** bigint columns arrive as strings or numbers depending on size; amounts are cents well within 2^53. */
function toAccount(row: RowDataPacket): Account {
  return { id: String(row.id), balance: Number(row.balance), frozen: Number(row.frozen) };
}
