import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';
import { BARRIER_RETENTION_DEFAULTS, PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';
import { DTX_DATA_LAYER } from './data-layer.provider.js';

/** Pause between two batches of one pass, leaving the database to the business traffic. */
const PAUSE_BETWEEN_BATCHES_MS = 100;
/** Below this, barrier rows likely go while transactions can still be in doubt. */
const MIN_SENSIBLE_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * Deletes old barrier rows (table dtx_barrier, on any SQL data layer) in small batches, so the table does not grow
 * without end.
 *
 * Why it is safe only past an age: the barrier's protections live in these rows. The phase-1
 * row tells a later cancel that the try ran (so it must be undone); the rollback marker tells a
 * late try that it must refuse (anti-hanging). Deleting either while a call for that branch
 * can still arrive breaks exactly that. So a row goes only when
 * - it is older than `barrierRetentionMs`, which the operator sets beyond the longest time a
 *   transaction can stay in doubt, and
 * - no row of the same branch is younger: a branch that saw any call recently is kept whole.
 * Prepared (XA) transactions are not rows of this table until they commit, so a branch still
 * prepared is never touched.
 *
 * Runs in every instance of the participant; SKIP LOCKED lets instances share the work, and
 * a row a running phase holds is left for a later pass. A plain timer rather than
 * @nestjs/schedule: the SDK must not require the host app to import ScheduleModule.
 */
@Injectable()
export class BarrierRetention implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DtxBarrierRetention');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(
    @Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
  ) {}

  get retentionMs(): number {
    return this.options.barrierRetentionMs ?? BARRIER_RETENTION_DEFAULTS.retentionMs;
  }

  get batchSize(): number {
    return this.options.barrierRetentionBatchSize ?? BARRIER_RETENTION_DEFAULTS.batchSize;
  }

  onApplicationBootstrap(): void {
    if (this.dataLayer.expiresRowsItself) {
      // Said once, so that a retention set on the module is not silently ignored.
      if (this.options.barrierRetentionMs !== undefined) {
        this.logger.warn(`barrierRetentionMs does not apply to ${this.dataLayer.description}, which expires barrier rows itself: set the retention on the data layer`);
      }
      return;
    }
    if (this.retentionMs <= 0) return;
    // Not refused (tests and short-lived set-ups may want it), but almost surely a mistake.
    if (this.retentionMs < MIN_SENSIBLE_RETENTION_MS) {
      this.logger.warn(
        `barrierRetentionMs=${this.retentionMs} is under a day: a cancel or a late try arriving after its branch's rows are deleted is no longer protected`,
      );
    }
    this.schedule();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * Deletes at most `batchSize` expired barrier rows. The age is measured on the database
   * clock, the one that wrote `created_at`; the index dtx_barrier_created_idx serves the scan,
   * the primary key the check for younger rows of the same branch. (Redis: rows expire on
   * their own; this deletes nothing.)
   */
  deleteExpiredBatch(): Promise<number> {
    return this.dataLayer.deleteExpiredBarrierRows(this.retentionMs, this.batchSize);
  }

  /** One pass: batch after batch until one comes back short. Returns how many rows it deleted. */
  async purgeExpired(): Promise<number> {
    if (this.retentionMs <= 0) return 0;
    let removed = 0;
    while (!this.stopped) {
      const batch = await this.deleteExpiredBatch();
      removed += batch;
      if (batch < this.batchSize) break;
      await sleep(PAUSE_BETWEEN_BATCHES_MS);
    }
    if (removed > 0) this.logger.log(`deleted ${removed} barrier rows older than ${this.retentionMs} ms`);
    return removed;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.purgeExpired()
        .catch((error: unknown) => {
          this.logger.warn(`barrier retention pass failed (retried next interval): ${String(error)}`);
          return 0;
        })
        .finally(() => {
          this.running = null;
          this.schedule();
        });
    }, this.options.barrierRetentionIntervalMs ?? BARRIER_RETENTION_DEFAULTS.intervalMs);
  }
}
