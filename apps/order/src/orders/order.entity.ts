import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '@app/demo-support';

export type OrderStatus = 'pending' | 'confirmed' | 'cancelled';

@Entity({ name: 'orders' })
export class OrderEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  @Column({ type: 'varchar', length: 64 })
  customer!: string;

  @Column({ type: 'varchar', length: 64 })
  sku!: string;

  @Column({ type: 'integer' })
  qty!: number;

  /** Price in cents. */
  @Column({ type: 'bigint', transformer: bigintAsNumber })
  amount!: number;

  @Column({ type: 'varchar', length: 16 })
  status!: OrderStatus;

  /** The global transaction that created it. */
  @Column({ type: 'varchar', length: 128 })
  gid!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
