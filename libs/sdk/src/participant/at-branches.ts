import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import type { BranchKey } from '../data-layers/core/barrier-sql.js';
import type { AtDataLayer, AtRowRef, BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { DTX_DATA_LAYER } from './data-layer.provider.js';
import { ParticipantExplorer } from './participant.explorer.js';
import { ParticipantSchema } from './participant-schema.js';
import { AT_DEFAULTS, PARTICIPANT_OPTIONS, type AtModeOptions, type ParticipantModuleOptions } from './participant.options.js';

/**
 * The AT actions' phases (see AtAction), and the clean-up after their commits.
 *
 * A commit only writes the barrier's commit row, which releases the branch's locks at once
 * (the trigger treats a lock of a committed branch as free). The undo and lock rows go after,
 * in batches: every commit answered queues its branch, and `cleanupDelayMs` after the first of
 * them one statement deletes the rows of every branch queued by then (up to
 * `cleanupBatchSize` per statement), so that the clean-up costs a fraction of a local
 * transaction per commit rather than one. A crash loses only that queue: a sweep at start-up and then
 * every `leftoverSweepIntervalMs` finds committed branches whose rows are still there.
 */
@Injectable()
export class AtBranches implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DtxAt');
  private readonly committed: BranchKey[] = [];
  private flushing: Promise<void> | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    @Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
    private readonly explorer: ParticipantExplorer,
    private readonly schema: ParticipantSchema,
  ) {}

  /** Whether this participant has AT actions (then the data layer is AT-ready: checked at start-up). */
  get active(): boolean {
    return this.explorer.list().some((action) => action.at);
  }

  async onApplicationBootstrap(): Promise<void> {
    const actions = this.explorer.list().filter((action) => action.at);
    if (actions.length === 0) return;
    const who = `participant ${this.options.name}: AtAction ${actions.map((a) => a.name).join(', ')}`;
    if (!this.dataLayer.at) throw new Error(`${who} needs AT mode, which ${this.dataLayer.description} does not have (Postgres data layers only)`);
    const at = this.options.at;
    if (!at) throw new Error(`${who} needs the module option at: { tables: [...] }, the tables its AT actions write`);
    // The triggers need AT's functions: under schemaCheck `fail` a missing schema has already
    // failed start-up; under `warn` they are installed once it is there.
    await this.schema.checkedAtStartUp();
    if (!this.schema.missing) return this.start(at);
    void this.schema.present
      .then(() => (this.stopped ? undefined : this.start(at)))
      .catch((error: unknown) => this.logger.error(`${who}: ${(error as Error).message}`));
  }

  private async start(at: AtModeOptions): Promise<void> {
    const tables = await this.at().install(at.tables, { installTriggers: at.installTriggers ?? true });
    const fresh = tables.filter((table) => table.installed).map((table) => table.name);
    this.logger.log(`AT tables ${tables.map((table) => table.name).join(', ')}${fresh.length > 0 ? ` (triggers installed on ${fresh.join(', ')})` : ''}`);
    await this.sweep();
    const interval = at.leftoverSweepIntervalMs ?? AT_DEFAULTS.leftoverSweepIntervalMs;
    this.sweepTimer = setInterval(() => void this.sweep(), interval);
    this.sweepTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    // What is still queued is found again by the next start's sweep.
    await this.flushing;
  }

  prepare(call: PhaseCallBody, work: BusinessWork<unknown>): Promise<BarrierOutcome> {
    return this.at().prepare(call, work, { lockWaitMs: this.options.at?.lockWaitMs ?? AT_DEFAULTS.lockWaitMs });
  }

  async commit(call: PhaseCallBody): Promise<BarrierOutcome> {
    const outcome = await this.at().commit(call);
    if (outcome.kind === 'ok') this.queueCleanup(call);
    return outcome;
  }

  rollback(call: PhaseCallBody): Promise<BarrierOutcome> {
    return this.at().rollback(call);
  }

  /** Resolves once nothing is queued for clean-up (for tests and orderly stops). */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private queueCleanup(key: BranchKey): void {
    this.committed.push({ gid: key.gid, branchId: key.branchId });
    this.flushing ??= this.flush().finally(() => {
      this.flushing = null;
    });
  }

  /** Deletes the rows of the queued branches, a batch per statement, until the queue is empty. */
  private async flush(): Promise<void> {
    const batchSize = this.options.at?.cleanupBatchSize ?? AT_DEFAULTS.cleanupBatchSize;
    // Let the commits answered meanwhile join the batch.
    await new Promise((resolve) => setTimeout(resolve, this.options.at?.cleanupDelayMs ?? AT_DEFAULTS.cleanupDelayMs).unref());
    while (this.committed.length > 0) {
      const batch = this.committed.splice(0, batchSize);
      try {
        await this.at().deleteCommitted(batch);
      } catch (error) {
        // Left for the sweep: the locks are already released by the commit rows.
        this.logger.warn(`AT clean-up of ${batch.length} committed branch(es) failed, left for the next sweep: ${(error as Error).message}`);
        return;
      }
    }
  }

  /** Finds committed branches whose rows a crash left, and deletes them. */
  private async sweep(): Promise<void> {
    if (this.stopped) return;
    const batchSize = this.options.at?.cleanupBatchSize ?? AT_DEFAULTS.cleanupBatchSize;
    try {
      for (;;) {
        const leftovers = await this.at().committedLeftovers(batchSize);
        if (leftovers.length === 0 || this.stopped) return;
        const removed = await this.at().deleteCommitted(leftovers);
        this.logger.log(`AT clean-up: ${removed.undo} undo and ${removed.locks} lock row(s) of ${leftovers.length} committed branch(es) left over`);
      }
    } catch (error) {
      this.logger.warn(`AT leftover sweep failed, tried again later: ${(error as Error).message}`);
    }
  }

  private at(): AtDataLayer {
    if (!this.dataLayer.at) throw new Error(`${this.dataLayer.description} has no AT mode`);
    return this.dataLayer.at;
  }
}

/** Options of AtLocks.readUnlocked. */
export interface ReadUnlockedOptions {
  /** How long to wait for the rows' locks to go. Default the module's `at.lockWaitMs` (1000 ms). */
  waitMs?: number;
  /** Lock the rows FOR UPDATE rather than FOR SHARE while `read` runs. Default false. */
  forUpdate?: boolean;
}

/**
 * Reads in AT mode. A reader outside a global transaction sees an AT branch's change as soon
 * as its phase 1 has committed locally, before the global decision (as in Seata, the default
 * is read uncommitted at the global level): fine for most reads, wrong for a decision that must
 * not rest on a change that may yet be rolled back. `readUnlocked` is for those.
 */
@Injectable()
export class AtLocks<Tx = unknown> {
  constructor(
    @Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer<Tx>,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
  ) {}

  /**
   * Runs `read` in a local transaction that holds `rows` (FOR SHARE, or FOR UPDATE) and only
   * once no global transaction holds any of them, so what it reads of them is decided: it waits
   * (up to `waitMs`) for the global transactions that hold them to end, then throws
   * AtRowLockedError. `rows` name each row by table and primary key: `{ table: 'accounts',
   * key: { id: 7 } }`; a row that does not exist is not waited for.
   */
  readUnlocked<T>(rows: readonly AtRowRef[], read: (tx: Tx) => Promise<T>, options: ReadUnlockedOptions = {}): Promise<T> {
    if (!this.dataLayer.at) throw new Error(`${this.dataLayer.description} has no AT mode`);
    return this.dataLayer.at.readUnlocked(rows, read, {
      waitMs: options.waitMs ?? this.options.at?.lockWaitMs ?? AT_DEFAULTS.lockWaitMs,
      forUpdate: options.forUpdate ?? false,
    });
  }
}
