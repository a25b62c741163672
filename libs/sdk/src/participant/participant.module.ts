import { Module } from '@nestjs/common';
import { ConfigurableParticipantModule } from './participant.module-definition.js';

/**
 * Makes a NestJS app a transaction participant: discovers the decorated actions, serves the
 * participant protocol, verifies the coordinator's signature on every call before anything
 * runs (CallVerifier), runs every phase in the barrier, and registers with the coordinator,
 * which gives it its signing secret (SigningKeys). Needs TypeOrmModule.forRoot in the app (the
 * barrier uses its DataSource, or the one the `dataSource` option names) with
 * `...dtxMigrations` among its migrations (checked at start-up, before registering: see the
 * `schemaCheck` option and ParticipantSchema); create the app with `rawBody: true` so the
 * signature is checked over the bytes that arrived. Old barrier rows are deleted in the
 * background past `barrierRetentionMs` (BarrierRetention).
 *
 * - `DtxParticipantModule.forRoot(options)`: ParticipantModuleOptions, plus `isGlobal`.
 * - `DtxParticipantModule.forRootAsync({ imports, inject, useFactory | useClass | useExisting, isGlobal, path })`:
 *   `useClass`/`useExisting` name a DtxParticipantOptionsFactory. Only the route prefix
 *   (`path`, default `tx`) is given up front; the transport is whatever the options say when
 *   connectParticipantTransport(app) runs.
 *
 * Options are checked once: where forRoot is called, or when forRootAsync's factory has run.
 * Exports BranchBarrier, BranchOutcomes (to report the outcome of a phase answered ongoing),
 * PreparedTransactions, AtLocks, SigningKeys, DtxParticipantHealthIndicator, WorkflowClient and
 * PARTICIPANT_OPTIONS. It also hosts the app's @Workflow methods (docs/workflows.md).
 */
@Module({})
export class DtxParticipantModule extends ConfigurableParticipantModule {}
