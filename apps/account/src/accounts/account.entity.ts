import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '@app/demo-support';


@Entity({ name: 'accounts' })
export class AccountEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  /** Money on the account, in cents. */
  @Column({ type: 'bigint', transformer: bigintAsNumber })
  balance!: number;

  /** Part of the balance reserved by debit tries not yet confirmed or cancelled. */
  @Column({ type: 'bigint', transformer: bigintAsNumber, default: 0 })
  frozen!: number;
}

/** A credit promised by a try, applied by confirm and dropped by cancel. */
@Entity({ name: 'pending_credits' })
export class PendingCreditEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  gid!: string;

  @PrimaryColumn({ name: 'branch_id', type: 'varchar', length: 128 })
  branchId!: string;

  @Column({ name: 'account_id', type: 'varchar', length: 64 })
  accountId!: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  amount!: number;
}
