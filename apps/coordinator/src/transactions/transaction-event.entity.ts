import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import type { Json } from '@app/protocol';

/** Append-only history of a transaction: the log an operator reads (PROTOCOL.md 6). */
@Entity({ name: 'transaction_events' })
@Index('transaction_events_gid_idx', ['gid', 'id'])
export class TransactionEventEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  gid!: string;

  @CreateDateColumn({ type: 'timestamptz' })
  at!: Date;

  @Column({ type: 'varchar', length: 32 })
  type!: string;

  @Column({ name: 'branch_id', type: 'varchar', length: 128, nullable: true })
  branchId!: string | null;

  @Column({ name: 'from_status', type: 'varchar', length: 16, nullable: true })
  fromStatus!: string | null;

  @Column({ name: 'to_status', type: 'varchar', length: 16, nullable: true })
  toStatus!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  detail!: Json;
}
