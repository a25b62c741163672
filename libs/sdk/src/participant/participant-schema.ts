import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';
import type { DtxSchemaError } from '../data-layers/core/schema.js';
import { DTX_DATA_LAYER } from './data-layer.provider.js';
import { ParticipantExplorer } from './participant.explorer.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

/** How often `schemaCheck: 'warn'` looks again for a schema that was missing at start-up. */
export const SCHEMA_RECHECK_MS = 5_000;

/**
 * Whether the SDK's tables are in the participant's database (DtxDataLayer.checkSchema), so
 * that a participant without them never registers and takes calls it can only fail: the
 * first check runs at start-up, before the registration and the AT triggers' installation,
 * which wait for it. With `schemaCheck: 'fail'` (the default) a missing schema fails start-up
 * in one line; with `'warn'` the line is logged and the check repeated until the schema is
 * there. After start-up a call can still find it gone (a table dropped): the dispatcher answers
 * 503 DTX_SCHEMA_MISSING and tells this service, which logs each distinct cause once and
 * reports it as the health indicator's reason until a check finds the schema whole again.
 */
@Injectable()
export class ParticipantSchema implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DtxParticipant');
  /** Resolves once a check found the schema whole; never rejects. */
  readonly present: Promise<void>;
  private markPresent!: () => void;
  private startUp: Promise<void> | null = null;
  /** What is missing, as the last check or call found it; null: nothing known to be. */
  private problem: string | null = null;
  /** The causes said in the log since the schema was last found whole. */
  private readonly said = new Set<string>();
  private recheckTimer: NodeJS.Timeout | null = null;

  constructor(
    @Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer,
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
    private readonly explorer: ParticipantExplorer,
  ) {
    this.present = new Promise((resolve) => (this.markPresent = resolve));
  }

  onApplicationBootstrap(): Promise<void> {
    return this.checkedAtStartUp();
  }

  onApplicationShutdown(): void {
    this.stopRechecking();
  }

  /** The start-up check, run once for whoever asks first (the providers' bootstrap hooks run at once). Rejects with the one line under `fail`. */
  checkedAtStartUp(): Promise<void> {
    this.startUp ??= this.checkAtStartUp();
    return this.startUp;
  }

  /** What is missing, asked again of the database when something was (so it clears once the migration ran); null when nothing is known to be. */
  async current(): Promise<string | null> {
    if (this.problem !== null) await this.check().catch(() => undefined);
    return this.problem;
  }

  /** Whether the schema is known to be missing (start-up found it so and no check has found it whole since). */
  get missing(): boolean {
    return this.problem !== null;
  }

  /** A call found the schema missing after start-up: remembered for the health indicator, and said once per distinct cause rather than per call. */
  metByCall(error: DtxSchemaError): void {
    this.problem = error.message;
    if (this.said.has(error.message)) return;
    this.said.add(error.message);
    this.logger.error(`calls fail: ${error.message} (answered 503 DTX_SCHEMA_MISSING until it is there)`);
  }

  private async checkAtStartUp(): Promise<void> {
    let problem: string | null;
    try {
      problem = await this.check();
    } catch (error) {
      // Not known to be there: under `fail` nothing may register, under `warn` it is asked again.
      problem = `the SDK's tables could not be checked in ${this.dataLayer.description}: ${(error as Error).message}`;
      this.problem = problem;
    }
    if (problem === null) return;
    const line = `participant ${this.options.name}: ${problem}`;
    if (this.options.schemaCheck !== 'warn') throw new Error(line);
    this.said.add(problem);
    this.logger.error(`${line} (schemaCheck is warn: not registered until it is there, checked again every ${SCHEMA_RECHECK_MS / 1000} s)`);
    this.recheckTimer = setInterval(() => void this.check().catch(() => undefined), SCHEMA_RECHECK_MS);
    this.recheckTimer.unref();
  }

  /** Asks the database; records and returns what is missing. */
  private async check(): Promise<string | null> {
    const needs = { at: this.explorer.list().some((action) => action.at) };
    const problem = (await this.dataLayer.checkSchema?.(needs)) ?? null;
    this.problem = problem;
    if (problem === null) {
      if (this.said.size > 0) this.logger.log(`the SDK's tables are there now in ${this.dataLayer.description}`);
      this.said.clear();
      this.stopRechecking();
      this.markPresent();
    }
    return problem;
  }

  private stopRechecking(): void {
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.recheckTimer = null;
  }
}
