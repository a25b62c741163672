import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { RetentionStore } from '../store/retention.store.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Deletes finished transactions (committed, rolled_back) once they are older than
 * RETENTION_DAYS, so the log does not grow without end. Never touches a transaction that is
 * not terminal, whatever its age. Runs in every instance: batches are claimed with
 * SKIP LOCKED, so instances share the work instead of colliding.
 *
 * A client that re-sends a begin with the gid of a deleted transaction gets a new transaction:
 * retention must exceed the longest window in which any client retries a begin.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  static readonly JOB_NAME = 'dtx-retention';

  private readonly logger = new Logger(RetentionService.name);
  /** The pass in progress, so that ticks never overlap and shutdown can wait for it. */
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(
    private readonly store: RetentionStore,
    private readonly scheduler: SchedulerRegistry,
    private readonly config: CoordinatorConfig,
  ) {}

  /** Age after which a finished transaction is deleted; 0: retention is off. */
  get retentionMs(): number {
    return this.config.env.RETENTION_DAYS * DAY_MS;
  }

  onApplicationBootstrap(): void {
    if (this.retentionMs === 0) {
      this.logger.log('retention disabled (RETENTION_DAYS=0): finished transactions are kept forever');
      return;
    }
    // The first pass waits one interval: start-up (recovery of in-doubt transactions) comes first.
    const handle = setInterval(() => this.tick(), this.config.env.RETENTION_INTERVAL_MS);
    this.scheduler.addInterval(RetentionService.JOB_NAME, handle);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    // ScheduleModule clears registered intervals before shutdown hooks; when it did not (this
    // service used on its own), do it here.
    if (this.scheduler.doesExist('interval', RetentionService.JOB_NAME)) this.scheduler.deleteInterval(RetentionService.JOB_NAME);
    await this.running?.catch(() => undefined);
  }

  /**
   * One pass: deletes batch after batch until a batch comes back short (nothing more has
   * expired, or what is left is locked by someone else, who will delete it), pausing between
   * batches so the job never monopolises the database. Returns how many transactions it deleted.
   */
  async purgeExpired(): Promise<number> {
    const { RETENTION_BATCH_SIZE: batchSize, RETENTION_BATCH_PAUSE_MS: pauseMs } = this.config.env;
    const ageMs = this.retentionMs;
    if (ageMs === 0) return 0;
    let removed = 0;
    while (!this.stopped) {
      const batch = await this.store.deleteFinished(ageMs, batchSize);
      removed += batch;
      if (batch < batchSize) break;
      if (pauseMs > 0) await sleep(pauseMs);
    }
    if (removed > 0) {
      this.logger.log(`retention deleted ${removed} finished transactions older than ${this.config.env.RETENTION_DAYS} days`);
    }
    return removed;
  }

  private tick(): void {
    if (this.running || this.stopped) return;
    this.running = this.purgeExpired()
      .catch((error: unknown) => {
        this.logger.warn(`retention pass failed (retried next interval): ${String(error)}`);
        return 0;
      })
      .finally(() => {
        this.running = null;
      });
  }
}
