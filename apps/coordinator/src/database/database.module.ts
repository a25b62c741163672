import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { CoordinatorConfigModule } from '../config/config.module.js';
import { EmbeddedDatabase } from './embedded-database.provider.js';
import { InitialSchema1763800000000 } from './migrations/1763800000000-initial-schema.js';
import { AdminIndexes1763800000500 } from './migrations/1763800000500-admin-indexes.js';
import { TraceParent1763800000600 } from './migrations/1763800000600-trace-parent.js';
import { RetentionIndex1763800000700 } from './migrations/1763800000700-retention-index.js';
import { ParticipantTrust1763800000800 } from './migrations/1763800000800-participant-trust.js';

/** The schema is the migrations'; store/ reads and writes every table with its own SQL. */
export const COORDINATOR_MIGRATIONS = [
  InitialSchema1763800000000,
  AdminIndexes1763800000500,
  TraceParent1763800000600,
  RetentionIndex1763800000700,
  ParticipantTrust1763800000800,
];

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [CoordinatorConfigModule],
      inject: [CoordinatorConfig, EmbeddedDatabase],
      useFactory: (config: CoordinatorConfig, embedded: EmbeddedDatabase) => ({
        type: 'postgres' as const,
        url: config.databaseUrl ?? embedded.running?.urlFor('coordinator'),
        entities: [],
        migrations: COORDINATOR_MIGRATIONS,
        migrationsRun: true,
        migrationsTransactionMode: 'each' as const,
        synchronize: false,
        extra: { max: config.env.DB_POOL_SIZE, keepAlive: true, application_name: `dtx-coordinator ${config.instanceId}` },
        retryAttempts: 0,
      }),
    }),
  ],
})
export class DatabaseModule {}

