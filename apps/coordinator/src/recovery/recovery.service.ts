import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import pLimit, { type LimitFunction } from 'p-limit';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { LeaseLostError } from '../engine/branch-caller.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { TransactionEngine } from '../engine/transaction-engine.service.js';
import { TransactionStore, type LoadedTx } from '../transactions/transaction.store.js';

/**
 * Runs in every instance. Claims due transactions (expired active ones, decided ones whose
 * phase 2 is unfinished and whose lease ran out or whose retry time came) and resumes them.
 * A crash at any instant leaves a row some instance resumes here.
 */
@Injectable()
export class RecoveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RecoveryService.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /**
   * Resumes in flight at once. A claimed batch is worked through this many at a time, so
   * recovery after a crash with thousands in doubt leaves database connections and the event
   * loop to new transactions instead of queueing them behind the whole batch.
   */
  private readonly inFlight: LimitFunction;

  constructor(
    private readonly store: TransactionStore,
    private readonly engine: TransactionEngine,
    private readonly config: CoordinatorConfig,
  ) {
    this.inFlight = pLimit(config.env.RECOVERY_CONCURRENCY);
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: claim a batch and resume it. Returns how many transactions it claimed. */
  async runOnce(): Promise<number> {
    const { LEASE_MS, RECOVERY_BATCH_SIZE } = this.config.env;
    const startedAt = Date.now();
    const claimed = await this.store.claimDue(this.engine.instanceId, LEASE_MS, RECOVERY_BATCH_SIZE);
    await Promise.all(claimed.map((loaded) => this.inFlight(() => this.resume({ ...loaded, heldUntil: startedAt + LEASE_MS }))));
    return claimed.length;
  }

  private async resume(loaded: LoadedTx): Promise<void> {
    try {
      await this.engine.resume(loaded);
    } catch (error) {
      if (error instanceof LeaseLostError) forTransaction(this.logger, error.gid).warn(error.message);
      else forTransaction(this.logger, loaded.tx.gid).error(`recovery failed: ${String(error)}`);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = null;
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    let claimed = 0;
    try {
      claimed = await this.runOnce();
    } catch (error) {
      this.logger.warn(`recovery pass failed: ${String(error)}`);
    }
    // A full batch means more is due: go again at once.
    this.schedule(claimed >= this.config.env.RECOVERY_BATCH_SIZE ? 0 : this.config.env.RECOVERY_INTERVAL_MS);
  }
}
