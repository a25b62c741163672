import { Module } from '@nestjs/common';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { DatabaseClock, DatabaseTime } from './database-clock.js';
import { ParticipantStore } from './participant.store.js';
import { TransactionQueries } from './transaction.queries.js';
import { STORE_OPTIONS, TransactionStore, type StoreOptions } from './transaction.store.js';

/**
 * The stores over the TypeORM DataSource (DatabaseModule) and the database's clock. A leaf: it
 * imports no other feature module.
 *
 * - TransactionStore: the transaction log's reads and writes, for the engine only (its writer is
 *   the only writer; the lint config keeps other layers from importing it but as types).
 * - TransactionQueries: read-only operator queries (lists, counts, held locks), for the admin API.
 * - ParticipantStore: the participant registry, for ParticipantsModule.
 * - DatabaseTime: the database's time (DatabaseClock keeps it measured), for whoever compares
 *   stored times.
 */
@Module({
  providers: [
    {
      provide: STORE_OPTIONS,
      inject: [CoordinatorConfig],
      useFactory: (config: CoordinatorConfig): StoreOptions => ({ writeConcurrency: config.env.DB_WRITE_CONCURRENCY }),
    },
    TransactionStore,
    TransactionQueries,
    ParticipantStore,
    DatabaseClock,
    // What the engine and services compare stored times with (a plain DatabaseTime in unit specs).
    { provide: DatabaseTime, useExisting: DatabaseClock },
  ],
  exports: [TransactionStore, TransactionQueries, ParticipantStore, DatabaseTime],
})
export class StoreModule {}
