import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from './embedded-postgres.js';

/** Holds the embedded Postgres when the coordinator started one, to stop it on shutdown. */
export class EmbeddedDatabase implements OnApplicationShutdown {
  constructor(readonly running: RunningEmbeddedPostgres | null) {}

  async onApplicationShutdown(): Promise<void> {
    await this.running?.stop();
  }
}

/** Without DATABASE_URL, start the embedded Postgres (DESIGN.md) before TypeORM connects. */
export const embeddedDatabaseProvider = {
  provide: EmbeddedDatabase,
  inject: [CoordinatorConfig],
  useFactory: async (config: CoordinatorConfig): Promise<EmbeddedDatabase> => {
    if (config.databaseUrl) return new EmbeddedDatabase(null);
    const logger = new Logger('EmbeddedPostgres');
    logger.log(`DATABASE_URL is unset: starting the embedded Postgres in ${config.env.EMBEDDED_PG_DIR} on port ${config.env.EMBEDDED_PG_PORT}`);
    const running = await startEmbeddedPostgres({ dataDir: config.env.EMBEDDED_PG_DIR, port: config.env.EMBEDDED_PG_PORT });
    await running.createDatabase('coordinator');
    return new EmbeddedDatabase(running);
  },
};
