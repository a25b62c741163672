import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Link } from '@opentelemetry/api';
import { isStoreUnavailable } from '../common/store-unavailable.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { DependencyOutages } from '../logging/dependency-outages.js';
import { LeaseLostError } from '../engine/branch-caller.js';
import { forTransaction } from '../logging/transaction-logger.js';
import { TransactionEngine } from '../engine/transaction-engine.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import type { LoadedTx } from '../store/records.js';
import { recoveryPass } from '../telemetry/tracing.js';

/**
 * Every participant a resumed transaction may call: its branches', a workflow's local steps'
 * compensations and its host (a resume), and a message's check-back target.
 */
function* participantsOf(loaded: LoadedTx): Iterable<string> {
  for (const branch of loaded.branches) yield branch.compensate?.participant ?? branch.participant;
  if (loaded.tx.check) yield loaded.tx.check.participant;
  if (loaded.tx.workflow) yield loaded.tx.workflow.participant;
}

/**
 * Runs in every instance. Claims due transactions (expired active ones, decided ones whose
 * phase 2 is unfinished and whose lease ran out or whose retry time came) and resumes them.
 * A crash at any instant leaves a row some instance resumes here.
 *
 * At most RECOVERY_CONCURRENCY resumes run at once, and the worker claims only as many rows as
 * it has free slots: a claimed row never waits in a queue while its lease runs out, and after a
 * crash with thousands in doubt, new transactions keep database connections and the event loop.
 */
@Injectable()
export class RecoveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RecoveryService.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Resumes under way. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Every slot was busy at the last tick: the next resume to finish starts the next tick. */
  private waitingForSlots = false;

  constructor(
    private readonly engine: TransactionEngine,
    private readonly config: CoordinatorConfig,
    private readonly gates: ParticipantGates,
    private readonly metrics: MetricsService,
    private readonly outages: DependencyOutages,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await Promise.all(this.inFlight);
  }

  /**
   * One claim: as many due transactions as there are free slots (at most a batch), each resumed
   * at once, in the background. Returns how many rows it asked for and how many it got.
   */
  async runOnce(): Promise<{ asked: number; claimed: number }> {
    const { RECOVERY_BATCH_SIZE, RECOVERY_CONCURRENCY } = this.config.env;
    const asked = Math.min(RECOVERY_BATCH_SIZE, RECOVERY_CONCURRENCY - this.inFlight.size);
    if (asked <= 0) return { asked: 0, claimed: 0 };
    const claimStartedAt = Date.now();
    const claimed = await this.engine.claimDue(asked);
    // Traced: the pass (when it claimed any), and each recovery under its transaction's trace, linked to the pass.
    const pass = recoveryPass(claimStartedAt, claimed.length);
    const passLinks = pass ? [{ context: pass.spanContext() }] : undefined;
    for (const loaded of claimed) {
      // Fair across participants: a transaction whose participant already has a full round of
      // calls waiting is left leased, not resumed; its lease runs out and it is claimed again
      // later, and the slot goes to the next one, perhaps another participant's.
      if (this.gates.saturated(participantsOf(loaded))) {
        this.metrics.recoveryDeferred.inc();
        continue;
      }
      const resumed: Promise<void> = this.resume(loaded, passLinks).finally(() => {
        this.inFlight.delete(resumed);
        this.slotFreed();
      });
      this.inFlight.add(resumed);
    }
    pass?.end();
    return { asked, claimed: claimed.length };
  }

  private async resume(loaded: LoadedTx, pass?: Link[]): Promise<void> {
    try {
      await this.engine.resume(loaded, pass);
    } catch (error) {
      if (error instanceof LeaseLostError) forTransaction(this.logger, error.gid).warn(error.message);
      else if (isStoreUnavailable(error)) {
        // Postgres went away mid-way: part of the outage, and the row is claimed again after it.
        this.outages.postgres.failed(error);
        forTransaction(this.logger, loaded.tx.gid).debug(`recovery interrupted: ${String(error)}`);
      } else forTransaction(this.logger, loaded.tx.gid).error(`recovery failed: ${String(error)}`);
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
    const { RECOVERY_CONCURRENCY, RECOVERY_INTERVAL_MS } = this.config.env;
    // Claim in chunks, not one row per finished resume: wait until half the slots are free.
    if (RECOVERY_CONCURRENCY - this.inFlight.size < Math.ceil(RECOVERY_CONCURRENCY / 2)) {
      this.waitingForSlots = true;
      return;
    }
    let result = { asked: 0, claimed: 0 };
    try {
      result = await this.runOnce();
      // A claim answered: Postgres is there, which ends an outage even with no probe asking.
      if (result.asked > 0) this.outages.postgres.recovered();
    } catch (error) {
      // Every instance claims every second: during an outage that is one failure a second.
      if (isStoreUnavailable(error)) this.outages.postgres.failed(error);
      else this.logger.warn(`recovery pass failed: ${String(error)}`);
    }
    // Got all it asked for: more is probably due, go again as soon as slots free up.
    if (result.asked > 0 && result.claimed >= result.asked) this.schedule(0);
    else this.schedule(RECOVERY_INTERVAL_MS);
  }

  private slotFreed(): void {
    if (!this.waitingForSlots || this.stopped) return;
    if (this.config.env.RECOVERY_CONCURRENCY - this.inFlight.size < Math.ceil(this.config.env.RECOVERY_CONCURRENCY / 2)) return;
    this.waitingForSlots = false;
    this.schedule(0);
  }
}
