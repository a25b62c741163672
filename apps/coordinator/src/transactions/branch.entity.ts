import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { BranchStatus, Json, JsonObject } from '@app/protocol';

/** One participant's part of a global transaction. */
@Entity({ name: 'branches' })
export class BranchEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  gid!: string;

  @PrimaryColumn({ name: 'branch_id', type: 'varchar', length: 128 })
  branchId!: string;

  /** Order of registration, to show and call branches in a stable order. */
  @Column({ type: 'integer' })
  seq!: number;

  @Column({ type: 'varchar', length: 64 })
  participant!: string;

  @Column({ type: 'varchar', length: 64 })
  action!: string;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  payload!: JsonObject;

  /** Saga: names of the steps this one waits for (the effective DAG, order included). */
  @Column({ name: 'depends_on', type: 'jsonb', default: () => "'[]'::jsonb" })
  dependsOn!: string[];

  @Column({ type: 'varchar', length: 16 })
  status!: BranchStatus;

  /** Calls made to the participant for this branch, all phases together. */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'last_error', type: 'jsonb', nullable: true })
  lastError!: Json;

  @Column({ type: 'jsonb', nullable: true })
  result!: Json;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
