import { Injectable } from '@nestjs/common';
import { BusinessFailure, SagaAction, TccAction, TransactionParticipant, queryRows, type BranchContext } from '@nest-dtx/sdk';

interface Move {
  wallet: string;
  amount: number;
}

/** Debit and credit a wallet in TCC (reserve, then apply or release) and as saga steps. */
@Injectable()
@TransactionParticipant()
export class WalletService {
  @TccAction({ name: 'debit', confirm: 'confirmDebit', cancel: 'cancelDebit' })
  async tryDebit(move: Move, { manager }: BranchContext) {
    // queryRows: the rows of an UPDATE … RETURNING, whatever shape the driver answers in.
    const frozen = await queryRows(
      manager,
      `UPDATE wallets SET frozen = frozen + $2 WHERE id = $1 AND balance - frozen >= $2 RETURNING id`,
      [move.wallet, move.amount],
    );
    if (frozen.length === 0) throw new BusinessFailure(`not enough money in ${move.wallet}`);
    return { frozen: move.amount };
  }

  async confirmDebit(move: Move, { manager }: BranchContext) {
    await manager.query(`UPDATE wallets SET balance = balance - $2, frozen = frozen - $2 WHERE id = $1`, [move.wallet, move.amount]);
  }

  async cancelDebit(move: Move, { manager }: BranchContext) {
    await manager.query(`UPDATE wallets SET frozen = frozen - $2 WHERE id = $1`, [move.wallet, move.amount]);
  }

  @TccAction({ name: 'credit', confirm: 'confirmCredit', cancel: 'cancelCredit' })
  async tryCredit(move: Move, { manager }: BranchContext) {
    const found = await queryRows(manager, `SELECT 1 FROM wallets WHERE id = $1`, [move.wallet]);
    if (found.length === 0) throw new BusinessFailure(`no wallet ${move.wallet}`);
    return null;
  }

  async confirmCredit(move: Move, { manager }: BranchContext) {
    await manager.query(`UPDATE wallets SET balance = balance + $2 WHERE id = $1`, [move.wallet, move.amount]);
  }

  async cancelCredit() {
    // Nothing was reserved for a credit.
  }

  @SagaAction({ name: 'withdraw', compensate: 'refund' })
  async withdraw(move: Move, { manager }: BranchContext) {
    const done = await queryRows(manager, `UPDATE wallets SET balance = balance - $2 WHERE id = $1 AND balance - frozen >= $2 RETURNING id`, [
      move.wallet,
      move.amount,
    ]);
    if (done.length === 0) throw new BusinessFailure(`not enough money in ${move.wallet}`);
    return { withdrawn: move.amount };
  }

  async refund(move: Move, { manager }: BranchContext) {
    await manager.query(`UPDATE wallets SET balance = balance + $2 WHERE id = $1`, [move.wallet, move.amount]);
  }

  @SagaAction({ name: 'deposit', compensate: 'undoDeposit' })
  async deposit(move: Move, { manager }: BranchContext) {
    await manager.query(`UPDATE wallets SET balance = balance + $2 WHERE id = $1`, [move.wallet, move.amount]);
  }

  async undoDeposit(move: Move, { manager }: BranchContext) {
    await manager.query(`UPDATE wallets SET balance = balance - $2 WHERE id = $1`, [move.wallet, move.amount]);
  }
}
