import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** A reading of the database's clock: its time, and the local round trip that brought it. */
export interface ClockSample {
  /** The database's `clock_timestamp()`, in ms since the epoch. */
  databaseMs: number;
  /** `performance.now()` when the query was sent and when its answer arrived. */
  sentAt: number;
  receivedAt: number;
}

/** A sample whose round trip took longer than this says too little about when the database read its clock. */
export const MAX_SAMPLE_ROUND_TRIP_MS = 250;
/** How long a precise sample is preferred to a much less precise one (the clocks drift by ppm: a minute is nothing). */
export const KEEP_BETTER_SAMPLE_MS = 60_000;

/**
 * The database's time, as this instance knows it: a monotonic reading (performance.now(), which
 * never steps) plus an offset measured against Postgres. Pure, so the rules are tested alone.
 *
 * Why: every time the coordinator stores (deadlines, due times, leases) is written in Postgres
 * time (`now()` in the statement). Comparing one with this machine's wall clock makes a skewed
 * instance act early or late, and a clock stepped by NTP, an operator or a VM resume moves every
 * comparison at once. The offset is taken at the middle of a query's round trip, so its error is
 * at most half that round trip (a sample slower than MAX_SAMPLE_ROUND_TRIP_MS is not taken), and
 * kept fresh so that the two clocks' drift (ppm) never adds up.
 */
export class DatabaseTime {
  /** databaseMs - performance.now(), once measured. */
  private offset: number | null = null;
  private errorMs = Number.POSITIVE_INFINITY;
  /** performance.now() when the sample in use arrived. */
  private takenAt: number | null = null;

  constructor(private readonly monotonic: () => number = () => performance.now()) {}

  /**
   * Takes a sample unless its round trip is too slow to say when the database read its clock, or
   * much slower than the one in use while that one is still fresh (NTP's minimum filter: under
   * load the answer waits in the event loop, and the middle of an inflated round trip is not
   * when the database read its clock).
   */
  observe(sample: ClockSample): boolean {
    const roundTrip = sample.receivedAt - sample.sentAt;
    if (roundTrip < 0 || roundTrip > MAX_SAMPLE_ROUND_TRIP_MS) return false;
    const fresh = this.takenAt !== null && sample.receivedAt - this.takenAt < KEEP_BETTER_SAMPLE_MS;
    if (fresh && roundTrip / 2 > 2 * this.errorMs + 1) return false;
    this.offset = sample.databaseMs - (sample.sentAt + roundTrip / 2);
    this.errorMs = roundTrip / 2;
    this.takenAt = sample.receivedAt;
    return true;
  }

  get measured(): boolean {
    return this.offset !== null;
  }

  /** Half the round trip of the sample in use: how far `now()` may be from the database's clock. */
  get uncertaintyMs(): number {
    return this.errorMs;
  }

  /**
   * The database's time now, in ms since the epoch. Before the first sample (the database was
   * not answering at start), this machine's wall clock is the only estimate there is.
   */
  now(): number {
    return this.offset === null ? Date.now() : this.monotonic() + this.offset;
  }

  /** How long until `at` (a time stored in the database), in ms; negative once it has passed. */
  msUntil(at: Date): number {
    return at.getTime() - this.now();
  }
}

/** How often the offset to the database's clock is measured again. */
const RESAMPLE_EVERY_MS = 10_000;

/**
 * The database clock of this instance (DatabaseTime), sampled at start and every 10 s with
 * `SELECT clock_timestamp()`. A failed sample keeps the last offset: while Postgres is away
 * nothing is compared with a stored time that was not read from it before.
 */
@Injectable()
export class DatabaseClock extends DatabaseTime implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(DatabaseClock.name);
  private timer: NodeJS.Timeout | null = null;
  /** The skew last reported, in whole seconds (0: within a second). */
  private reportedSkewS = 0;

  constructor(@InjectDataSource() private readonly db: DataSource) {
    super();
  }

  async onModuleInit(): Promise<void> {
    // A few samples, the most precise kept: the first query on a fresh pool pays for the connection.
    for (let i = 0; i < 5; i++) await this.sample();
    this.timer = setInterval(() => void this.sample(), RESAMPLE_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Worth a line when this machine's clock disagrees with the database's by a second or more (its
   * logs' times are off too), once, and again only when the difference moves by another second.
   */
  private reportSkew(skewMs: number): void {
    const rounded = Math.abs(skewMs) < 1_000 ? 0 : Math.round(skewMs / 1_000);
    if (rounded === this.reportedSkewS) return;
    this.reportedSkewS = rounded;
    if (rounded !== 0) this.logger.warn(`this machine's clock is ${Math.round(skewMs)} ms off the database's: stored times are compared in the database's time`);
    else this.logger.log(`this machine's clock agrees with the database's again (${Math.round(skewMs)} ms)`);
  }

  /** One measurement; false when it failed or was too slow to use. */
  async sample(): Promise<boolean> {
    try {
      const sentAt = performance.now();
      const rows: { ms: string }[] = await this.db.query(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8::text AS ms`);
      const receivedAt = performance.now();
      const taken = this.observe({ databaseMs: Number(rows[0].ms), sentAt, receivedAt });
      if (taken) this.reportSkew(Date.now() - this.now());
      return taken;
    } catch (error) {
      this.logger.debug(`database clock not sampled: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  }
}
