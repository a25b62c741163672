import { Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { CoordinatorConfigModule } from '../config/config.module.js';
import { EmbeddedDatabase } from './embedded-database.provider.js';
import { migrateDatabase, pendingMigrations } from './migrate.js';
import { COORDINATOR_MIGRATIONS } from './migrations/index.js';

export { COORDINATOR_MIGRATIONS };

/**
 * Brings the schema up to date (or, with MIGRATIONS_RUN=false, checks that a migration job
 * did) before the pool connects: nothing that reads a table starts on an old schema.
 */
async function prepareSchema(config: CoordinatorConfig, url: string): Promise<void> {
  const logger = new Logger('Migrations');
  if (config.migrationsRun) {
    const applied = await migrateDatabase(url, { waiting: () => logger.log('another instance is migrating the database; waiting for it') });
    for (const migration of applied) logger.log(`applied ${migration.name}`);
    return;
  }
  const pending = await pendingMigrations(url);
  if (pending.length > 0) {
    throw new Error(`MIGRATIONS_RUN is false and ${pending.length} migration(s) are pending (${pending.join(', ')}): run nest-dtx migrate first`);
  }
}

/** How long a request waits for a Postgres connection (a new one, or a free one of the pool). */
const DB_CONNECT_TIMEOUT_MS = 10_000;

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [CoordinatorConfigModule],
      inject: [CoordinatorConfig, EmbeddedDatabase],
      useFactory: async (config: CoordinatorConfig, embedded: EmbeddedDatabase) => {
        const url = config.databaseUrl ?? embedded.running?.urlFor('coordinator');
        if (!url) throw new Error('no database: DATABASE_URL is unset and the embedded Postgres is not running');
        await prepareSchema(config, url);
        return {
          type: 'postgres' as const,
          url,
          entities: [],
          migrations: COORDINATOR_MIGRATIONS,
          // prepareSchema ran them, under the lock TypeORM does not take.
          migrationsRun: false,
          migrationsTransactionMode: 'each' as const,
          synchronize: false,
          extra: {
            max: config.env.DB_POOL_SIZE,
            keepAlive: true,
            application_name: `dtx-coordinator ${config.instanceId}`,
            // A database that drops packets (a host gone, a firewall) would otherwise hold every
            // request until the OS gives up on the socket, minutes later: after this a request
            // answers 503 STORE_UNAVAILABLE. Also bounds the wait for a free connection of the pool.
            connectionTimeoutMillis: DB_CONNECT_TIMEOUT_MS,
          },
          retryAttempts: 0,
        };
      },
    }),
  ],
})
export class DatabaseModule {}
