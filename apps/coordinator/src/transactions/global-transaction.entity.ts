import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { GlobalStatus, JsonObject, Mode, RollbackReason } from '@app/protocol';

/** One row per global transaction: the durable record of its status and of who drives it. */
@Entity({ name: 'global_transactions' })
@Index('global_transactions_due_idx', ['nextAttemptAt'], { where: 'next_attempt_at IS NOT NULL' })
@Index('global_transactions_finished_idx', ['updatedAt', 'gid'], { where: "status IN ('committed', 'rolled_back')" })
export class GlobalTransactionEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  gid!: string;

  @Column({ type: 'varchar', length: 8 })
  mode!: Mode;

  @Column({ type: 'varchar', length: 16 })
  status!: GlobalStatus;

  @Column({ type: 'varchar', length: 16, nullable: true })
  reason!: RollbackReason | null;

  /** Begun with its branches (one-shot) rather than built by the client call by call. */
  @Column({ name: 'one_shot', type: 'boolean', default: false })
  oneShot!: boolean;

  /** Saga: steps follow their `dependsOn` (true) or the listed order (false). */
  @Column({ type: 'boolean', default: false })
  concurrent!: boolean;

  /** Hash of the begin request, to tell an idempotent repeat from a conflicting reuse of the gid. */
  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash!: string;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  metadata!: JsonObject;

  @Column({ name: 'timeout_ms', type: 'integer' })
  timeoutMs!: number;

  @Column({ type: 'timestamptz' })
  deadline!: Date;

  /** Fencing token: every update is a compare-and-set on it. */
  @Column({ type: 'integer', default: 1 })
  version!: number;

  /** Phase-2 delivery rounds so far (drives the backoff and the attention flag). */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'needs_attention', type: 'boolean', default: false })
  needsAttention!: boolean;

  /** When recovery should next look at it; NULL once terminal. */
  @Column({ name: 'next_attempt_at', type: 'timestamptz', nullable: true })
  nextAttemptAt!: Date | null;

  /** W3C trace context of the client's begin request, propagated to every participant call. */
  @Column({ name: 'trace_parent', type: 'varchar', length: 55, nullable: true })
  traceParent!: string | null;

  @Column({ name: 'lease_owner', type: 'varchar', length: 128, nullable: true })
  leaseOwner!: string | null;

  @Column({ name: 'lease_until', type: 'timestamptz', nullable: true })
  leaseUntil!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
