import { CliError, ExitCode } from './exit-codes.js';

/*
 * `start` and `migrate` load the coordinator (Nest, TypeORM) only when they run, so the admin
 * commands start in a fraction of the time.
 */

/** `nest-dtx start`: the coordinator in this process, exactly as `node dist/main.js` runs it. */
export async function start(): Promise<void> {
  const { startCoordinator } = await import('../start.js');
  try {
    await startCoordinator(process.env);
  } catch (error) {
    throw new CliError('START_FAILED', firstLine(error), ExitCode.FAILED);
  }
}

/** `nest-dtx migrate`: the pending migrations under the advisory lock; says what it applied. */
export async function migrate(env: Readonly<Record<string, string | undefined>>, log: (line: string) => void): Promise<void> {
  if (!env.DATABASE_URL) throw new CliError('USAGE', 'migrate needs DATABASE_URL (the Postgres to migrate)', ExitCode.USAGE);
  const { loadCoordinatorEnv } = await import('../config/coordinator.config.js');
  let url: string;
  try {
    // The same validation as the coordinator's, of the one variable migrate reads.
    url = loadCoordinatorEnv({ DATABASE_URL: env.DATABASE_URL }).DATABASE_URL ?? env.DATABASE_URL;
  } catch (error) {
    throw new CliError('USAGE', firstLine(error), ExitCode.USAGE);
  }
  const { migrateDatabase } = await import('../database/migrate.js');
  let applied: { name: string }[];
  try {
    applied = await migrateDatabase(url, { waiting: () => log('another process holds the migration lock; waiting for it') });
  } catch (error) {
    throw new CliError('MIGRATION_FAILED', firstLine(error), ExitCode.FAILED);
  }
  for (const migration of applied) log(`applied ${migration.name}`);
  log(applied.length === 0 ? 'no pending migrations: the schema is current' : `${applied.length} migration(s) applied`);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}
