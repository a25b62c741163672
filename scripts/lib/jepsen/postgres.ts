/**
 * The jepsen suite's own Postgres clusters (Debian's postgresql-common): created with
 * pg_createcluster, never started at boot, trust authentication for the suite's addresses,
 * started on the loopback or inside a network namespace, restarted (immediate or fast) by the
 * faults, and dropped at the end. The machine's own cluster (5432) is never touched.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { sleep } from '../stack.js';
import { CLUSTER_PREFIX, dropCluster, must, run } from './system.js';

export const PG_VERSION = (() => {
  try {
    return readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))[0] ?? '15';
  } catch {
    return '15';
  }
})();

/** The role the coordinators connect as: not a superuser, so that the connection-exhaustion fault reaches them (superusers keep reserved slots). */
export const APP_ROLE = 'dtx';

export interface ClusterOptions {
  name: string;
  port: number;
  maxConnections?: number;
  /** Where the postmaster listens and, when set, the namespace it runs in. */
  placement: { address: string; ns: string | null };
}

export class SuiteCluster {
  constructor(readonly options: ClusterOptions) {
    if (!options.name.startsWith(CLUSTER_PREFIX)) throw new Error(`a suite cluster's name starts with ${CLUSTER_PREFIX}`);
  }

  get name(): string {
    return this.options.name;
  }

  get address(): string {
    return this.options.placement.address;
  }

  get port(): number {
    return this.options.port;
  }

  /** A database's URL for `user` (the superuser postgres by default). */
  url(database: string, user = 'postgres'): string {
    return `postgres://${user}@${this.address}:${this.port}/${database}`;
  }

  /** The server's log (Debian's place for it). */
  get logFile(): string {
    return `/var/log/postgresql/postgresql-${PG_VERSION}-${this.name}.log`;
  }

  private confDir(): string {
    return `/etc/postgresql/${PG_VERSION}/${this.name}`;
  }

  async create(): Promise<void> {
    await dropCluster(PG_VERSION, this.name).catch(() => undefined);
    await must('pg_createcluster', [PG_VERSION, this.name, '--port', String(this.port), '--start-conf', 'manual', '--', '--auth=trust', '--no-sync'], 120_000);
    writeFileSync(`${this.confDir()}/pg_hba.conf`, ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host all all 10.231.0.0/24 trust', ''].join('\n'));
  }

  /** The settings of this start: where it listens (the same cluster serves loopback and namespace runs). */
  private configure(): void {
    writeFileSync(
      `${this.confDir()}/conf.d/jepsen.conf`,
      [
        `listen_addresses = '${this.address}'`,
        `max_connections = ${this.options.maxConnections ?? 100}`,
        'superuser_reserved_connections = 3',
        'max_prepared_transactions = 64',
        // Crash recovery after an immediate stop stays short.
        "checkpoint_timeout = '30s'",
        "log_min_messages = 'warning'",
        '',
      ].join('\n'),
    );
  }

  /** Starts the postmaster (in its namespace) and waits until it answers. */
  async start(): Promise<void> {
    this.configure();
    const args = ['--skip-systemctl-redirect', PG_VERSION, this.name, 'start'];
    const { ns } = this.options.placement;
    await must(ns ? 'ip' : 'pg_ctlcluster', ns ? ['netns', 'exec', ns, 'pg_ctlcluster', ...args] : args, 120_000);
    await this.waitReady();
  }

  async stop(mode: 'immediate' | 'fast' = 'fast'): Promise<void> {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', PG_VERSION, this.name, 'stop', '-m', mode], 120_000);
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = new pg.Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 2_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch (error) {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`Postgres ${this.name} did not answer: ${error instanceof Error ? error.message : String(error)}`);
        await sleep(200);
      }
    }
  }

  /** Runs statements as the superuser on a database of this cluster. */
  async admin<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: this.url(database) });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** A fresh database (dropped first if it exists), owned by the application role. */
  async freshDatabase(name: string): Promise<string> {
    await this.admin('postgres', async (client) => {
      await client.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN CREATE ROLE ${APP_ROLE} LOGIN; END IF; END $$`);
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${name}" OWNER ${APP_ROLE}`);
    });
    return name;
  }

  async drop(): Promise<void> {
    await dropCluster(PG_VERSION, this.name);
  }
}
