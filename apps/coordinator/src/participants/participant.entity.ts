import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { Mode, Transport } from '@app/protocol';

/** A registered participant: the only addresses the coordinator ever calls. */
@Entity({ name: 'participants' })
export class ParticipantEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  name!: string;

  @Column({ type: 'varchar', length: 8 })
  transport!: Transport;

  @Column({ type: 'varchar', length: 2048, nullable: true })
  endpoint!: string | null;

  @Column({ type: 'varchar', length: 255, nullable: true })
  host!: string | null;

  @Column({ type: 'integer', nullable: true })
  port!: number | null;

  @Column({ type: 'jsonb' })
  actions!: { name: string; modes: Mode[] }[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
