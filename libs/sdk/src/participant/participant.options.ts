import type { ConfigurableModuleAsyncOptions } from '@nestjs/common';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';

/** How the coordinator reaches this participant (PROTOCOL.md 4, 5.1, 5.2). */
export type ParticipantTransportOptions =
  | { kind: 'http' }
  /** NestJS microservices TCP: the service listens on host:port for the `tx.branch` pattern. */
  | { kind: 'tcp'; host: string; port: number }
  /** NestJS microservices Redis: the coordinator's Redis carries the calls. */
  | { kind: 'redis'; url: string }
  /**
   * NestJS microservices RabbitMQ: the coordinator's RabbitMQ (its RABBITMQ_URL) carries the
   * calls; the participant declares and consumes its own queue `dtx.participant.<name>`.
   */
  | { kind: 'rabbitmq'; url: string }
  /**
   * NestJS microservices NATS: the coordinator's NATS (its NATS_URL) carries the calls, on
   * subject `tx.branch.<name>`; the participant's instances answer in one queue group.
   */
  | { kind: 'nats'; url: string };

/** AT mode (AtAction): which tables its actions write, and how it waits for locked rows. */
export interface AtModeOptions {
  /**
   * Every table an AT action may write (`accounts`, or `schema.table`), each with a primary key.
   * The SDK puts its capture triggers on them at start-up; a write to a table not listed here
   * is not undone on rollback.
   */
  tables: string[];
  /**
   * How long an AT phase 1 waits for a row another global transaction holds (its local
   * transaction is rolled back and run again meanwhile), before it fails. Default 1000 ms.
   * Keep it well under the coordinator's CALL_TIMEOUT_MS (5 s by default).
   */
  lockWaitMs?: number;
  /** Install the triggers at start-up (default true); false only checks they are there (for a database user without DDL rights). */
  installTriggers?: boolean;
  /** Committed branches whose undo and lock rows one clean-up statement deletes. Default 200. */
  cleanupBatchSize?: number;
  /**
   * How long the clean-up waits after a commit for more to join its batch. Default 100 ms. The
   * locks are released by the commit itself, so this delays only the deletion of rows nothing
   * reads any more.
   */
  cleanupDelayMs?: number;
  /** How often committed branches left over by a crash are looked for. Default 60 s. */
  leftoverSweepIntervalMs?: number;
}

/** Defaults of the AT options. */
export const AT_DEFAULTS = {
  lockWaitMs: 1_000,
  cleanupBatchSize: 200,
  cleanupDelayMs: 100,
  leftoverSweepIntervalMs: 60_000,
} as const;

export interface ParticipantModuleOptions {
  /** The participant's name in the coordinator's registry, e.g. `account`. */
  name: string;
  /** Base URL of the coordinator, e.g. `http://127.0.0.1:7070`. */
  coordinatorUrl: string;
  /** Base URL at which the coordinator reaches this service over HTTP, e.g. `http://127.0.0.1:4001`. */
  publicUrl?: string;
  /** Transport the coordinator calls this participant with. Default HTTP (needs `publicUrl`). */
  transport?: ParticipantTransportOptions;
  /**
   * Route prefix of the participant protocol; the endpoint registered is `${publicUrl}/${path}`.
   * Default `tx`. The routes are declared with the module, so with forRootAsync it is given
   * next to the factory (`forRootAsync({ path, useFactory })`); a factory that returns another
   * path is refused at start-up.
   */
  path?: string;
  /**
   * Where the participant keeps its state: the barrier table (or Redis keys) and the local
   * transactions its actions run in. One of the adapters: `typeormDataLayer(dataSource)`
   * (`@nest-dtx/sdk/typeorm`), `pgDataLayer(pool)`, `mysql2DataLayer(pool)`,
   * `prismaDataLayer(prisma, { dialect })`, `drizzleDataLayer(db, { dialect })`,
   * `kyselyDataLayer(db, { dialect })`, `mikroOrmDataLayer(orm)`, `redisDataLayer(redis)`. The
   * actions are written the same for all; each receives the layer's handle as `context.tx`.
   * Default: TypeORM, on the DataSource the `dataSource` option names.
   */
  dataLayer?: DtxDataLayer<unknown>;
  /**
   * Without `dataLayer`: the TypeORM DataSource that holds the barrier table (dtx_barrier) and in
   * whose local transactions the actions run, by its name as given to
   * `TypeOrmModule.forRoot({ name })`. Default the default (unnamed) DataSource.
   */
  dataSource?: string;
  /** AT mode: required when the participant has AtAction methods. */
  at?: AtModeOptions;
  /**
   * What start-up does when the SDK's tables are not in the data layer's database (the barrier
   * table dtx_barrier and its columns; with AtAction methods, AT mode's tables and functions):
   * - `fail` (default): start-up fails with one line naming what is missing and the migration
   *   that makes it; nothing is registered with the coordinator.
   * - `warn`: for an app whose migrations run after it starts. The line is logged, the app
   *   starts but does not register, and its health indicator is down with that line; the
   *   schema is checked again every 5 s, and once it is there the participant registers (and
   *   installs its AT triggers).
   * Data layers without a schema (Redis) have nothing to check.
   */
  schemaCheck?: 'fail' | 'warn';
  /** Register with the coordinator at start-up. Default true. */
  register?: boolean;
  /** How long start-up waits for the first successful registration before going on in the background. Default 15 s. */
  registerWaitMs?: number;
  /**
   * HTTP transport only: headers the coordinator sends on every call to this participant, e.g.
   * the credentials of an API gateway in front of it, or a header a guard of the host app
   * checks. No hop-by-hop, framing, signature or x-tx-* headers (the coordinator refuses them).
   */
  callHeaders?: Record<string, string>;
  /** Bearer key sent to the coordinator, when it requires one. */
  apiKey?: string;
  /**
   * Verify the coordinator's signature on every call (PROTOCOL.md 5.5) before anything runs.
   * Default true. Off is refused at start-up unless every address the participant is reachable
   * at (publicUrl, TCP host, Redis, RabbitMQ or NATS URL) is loopback.
   */
  verifySignatures?: boolean;
  /**
   * `whsec_<base64>`: the secret calls are verified with until the coordinator has answered a
   * registration (from then on only the coordinator's, so a rotated-out secret stops working
   * at once). Required with `register: false`, where it is the only one.
   */
  signingSecret?: string;
  /**
   * How often the participant registers again, which is how it picks up a rotated signing
   * secret: it is the bound within which a rotation without overlap (a revocation) takes effect
   * here, the old secret refused from then on. Default 60 s; 0 never (a refused call still
   * triggers one, at most every 10 s, but a revoked secret then works until the next start).
   */
  registrationRefreshMs?: number;
  /**
   * Age after which a branch's barrier rows (table dtx_barrier) are deleted by a background job;
   * 0 keeps them forever. Default 7 days. A branch's rows go only once every row of that branch
   * is older than this. Must exceed the longest time a transaction can stay in doubt (its
   * timeout, plus how long the coordinator may keep retrying phase 2, plus a call timeout):
   * a cancel that arrives after the try's row is gone is taken for a null compensation and
   * undoes nothing, and a try that arrives after its rollback marker is gone runs (hanging).
   */
  barrierRetentionMs?: number;
  /** Barrier rows deleted per statement. Default 500. */
  barrierRetentionBatchSize?: number;
  /** How often the barrier retention job runs. Default 10 minutes. */
  barrierRetentionIntervalMs?: number;
}

/** Defaults of the barrier retention options. */
export const BARRIER_RETENTION_DEFAULTS = {
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  batchSize: 500,
  intervalMs: 10 * 60 * 1000,
} as const;

/** Defaults of the registration options. */
export const REGISTRATION_DEFAULTS = {
  waitMs: 15_000,
  refreshMs: 60 * 1000,
} as const;

export const PARTICIPANT_OPTIONS = Symbol('dtx:participant-options');

/** The name of the method a forRootAsync `useClass`/`useExisting` provider implements. */
export const PARTICIPANT_OPTIONS_FACTORY_METHOD = 'createDtxParticipantOptions';

/** What forRootAsync's `useClass` or `useExisting` provides: a class that makes the options (it may inject what it needs). */
export interface DtxParticipantOptionsFactory {
  createDtxParticipantOptions(): ParticipantModuleOptions | Promise<ParticipantModuleOptions>;
}

/** What shapes the module itself rather than its options, given to forRoot and forRootAsync alike. */
export interface ParticipantModuleExtras {
  /** Make the module's exports (BranchBarrier, BranchOutcomes, PreparedTransactions, AtLocks, SigningKeys, DtxParticipantHealthIndicator) global. Default false. */
  isGlobal?: boolean;
}

/**
 * forRootAsync: one of `useFactory` (with `inject`), `useClass` or `useExisting` (a
 * DtxParticipantOptionsFactory), `imports` for what they need, plus `isGlobal` and `path` (the
 * route prefix, which the module's routes are declared with; default `tx`). Nothing about the
 * transport is declared here: the options' transport is read when connectParticipantTransport runs.
 */
export type ParticipantModuleAsyncOptions = ConfigurableModuleAsyncOptions<ParticipantModuleOptions, typeof PARTICIPANT_OPTIONS_FACTORY_METHOD> &
  ParticipantModuleExtras & { path?: string };
