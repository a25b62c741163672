/**
 * The contract of scripts/lib/pg-failover.ts (written apart): a Postgres primary with a
 * (synchronous) standby behind HAProxy. The suite loads the module at run time, so that it
 * builds without it; when it is not there, the failover fault reports "not available".
 * These types are a copy of that contract, kept only until the module is merged.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface ReplicatedPostgresOptions {
  name: string;
  primaryPort: number;
  standbyPort: number;
  proxyPort: number;
  synchronous?: boolean;
}

export interface ReplicatedPostgres {
  /** Through the proxy: whichever server is primary. */
  url: string;
  primaryUrl: string;
  standbyUrl: string;
  killPrimary(): Promise<void> | void;
  promoteStandby(): Promise<void> | void;
  stop(): Promise<void> | void;
}

export interface FailoverModule {
  startReplicatedPostgres(options: ReplicatedPostgresOptions): Promise<ReplicatedPostgres>;
}

/** The module (DTX_PG_FAILOVER_MODULE overrides where it is), or why it cannot be had. */
export async function loadFailover(): Promise<FailoverModule | string> {
  const path = process.env.DTX_PG_FAILOVER_MODULE ?? fileURLToPath(new URL('../pg-failover.js', import.meta.url));
  if (!existsSync(path)) return `${path} is not in this build (scripts/lib/pg-failover.ts not merged yet)`;
  const loaded = (await import(pathToFileURL(path).href)) as Partial<FailoverModule>;
  if (typeof loaded.startReplicatedPostgres !== 'function') return `${path} has no startReplicatedPostgres`;
  return loaded as FailoverModule;
}
