import { Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { retryWithBackoff, RetryTimeoutError } from '../common/retry-with-backoff.js';
import { isStoreUnavailable } from '../common/store-unavailable.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { CoordinatorConfigModule } from '../config/config.module.js';
import { DependencyOutages, DependencyOutagesModule } from '../logging/dependency-outages.js';
import { describeCause, type OutageEpisode } from '../logging/outage-episode.js';
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

/** The start-up wait's retries (DATABASE_CONNECT_TIMEOUT_MS): 0.5 s, doubling to 5 s, with jitter. */
const START_BACKOFF = { baseMs: 500, capMs: 5_000 };

/** The data source openTransactionLog opened, for dataSourceFactory: Nest hands it only the options. */
const opened = new WeakMap<object, DataSource>();

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [CoordinatorConfigModule, DependencyOutagesModule],
      inject: [CoordinatorConfig, EmbeddedDatabase, DependencyOutages],
      useFactory: async (config: CoordinatorConfig, embedded: EmbeddedDatabase, outages: DependencyOutages) => {
        const url = config.databaseUrl ?? embedded.running?.urlFor('coordinator');
        if (!url) throw new Error('no database: DATABASE_URL is unset and the embedded Postgres is not running');
        const postgres = outages.postgres;
        const options = {
          type: 'postgres' as const,
          url,
          entities: [],
          migrations: COORDINATOR_MIGRATIONS,
          // prepareSchema ran them, under the lock TypeORM does not take.
          migrationsRun: false,
          migrationsTransactionMode: 'each' as const,
          synchronize: false,
          // An idle connection the server dropped (a restart, a failover): part of an outage, not a bug.
          poolErrorHandler: (error: unknown) => postgres.failed(error),
          extra: {
            max: config.env.DB_POOL_SIZE,
            keepAlive: true,
            application_name: `dtx-coordinator ${config.instanceId}`,
            // A database that drops packets (a host gone, a firewall) would otherwise hold every
            // request until the OS gives up on the socket, minutes later: after this a request
            // answers 503 STORE_UNAVAILABLE. Also bounds the wait for a free connection of the pool.
            connectionTimeoutMillis: DB_CONNECT_TIMEOUT_MS,
            // A new connection made is Postgres answering again: it ends an outage even when no
            // readiness probe asks (pg-pool calls it for each connection it opens).
            onConnect: () => postgres.recovered(),
          },
          // @nestjs/typeorm's own retries (retryAttempts, retryDelay) wait a fixed delay, log every
          // attempt at error level and leave out the migrations run before the pool opens:
          // openTransactionLog retries instead, around both.
          retryAttempts: 0,
        };
        opened.set(options, await openTransactionLog(config, url, options, postgres));
        return options;
      },
      dataSourceFactory: (options?: DataSourceOptions): Promise<DataSource> => {
        const dataSource = options && opened.get(options);
        if (dataSource) {
          opened.delete(options);
          return Promise.resolve(dataSource);
        }
        // Only if Nest ever copied the options on the way: TypeORM opens it, once, without waiting.
        return Promise.resolve(new DataSource(options ?? { type: 'postgres' }));
      },
    }),
  ],
})
export class DatabaseModule {}

/**
 * Waits for Postgres, brings the schema up to date and opens the pool, all under one
 * DATABASE_CONNECT_TIMEOUT_MS: a coordinator started before its database (a node reboot, a
 * failover, compose starting everything together) waits for it instead of exiting. Only
 * failures that mean "not there yet" (isStoreUnavailable) are retried: a wrong password or a
 * missing database ends the start at once. The HTTP server listens only after this: until then
 * the instance is not live, and not ready (deploy/k8s: the startupProbe allows for the wait).
 */
async function openTransactionLog(config: CoordinatorConfig, url: string, options: DataSourceOptions, outage: OutageEpisode): Promise<DataSource> {
  const logger = new Logger('Database');
  const timeoutMs = config.env.DATABASE_CONNECT_TIMEOUT_MS;
  const where = describeDatabase(url);
  let waiting = false;
  try {
    const dataSource = await retryWithBackoff(
      async () => {
        await prepareSchema(config, url);
        return new DataSource(options).initialize();
      },
      {
        timeoutMs,
        backoff: START_BACKOFF,
        retryable: isStoreUnavailable,
        onFailure: (error, _attempt, retryInMs) => {
          outage.failed(error);
          if (retryInMs === null || waiting) return;
          waiting = true;
          logger.log(`waiting up to ${seconds(timeoutMs)} s for Postgres at ${where} (DATABASE_CONNECT_TIMEOUT_MS); the server listens once it answers`);
        },
      },
    );
    outage.recovered();
    return dataSource;
  } catch (error) {
    if (!(error instanceof RetryTimeoutError)) throw error;
    const wait = timeoutMs === 0 ? 'DATABASE_CONNECT_TIMEOUT_MS is 0: no wait' : `waited ${seconds(error.elapsedMs)} s, ${error.attempts} attempts; DATABASE_CONNECT_TIMEOUT_MS is ${timeoutMs}`;
    throw new Error(`Postgres at ${where} is unreachable (${wait}): ${describeCause(error.lastError)}`, { cause: error });
  }
}

const seconds = (ms: number): string => (ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1);

/** host:port/database of a Postgres URL, without its credentials (the line goes to logs and stderr). */
function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}
