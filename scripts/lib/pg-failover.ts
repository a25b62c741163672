/**
 * A replicated Postgres for the fault suite (issue 24): a primary, a streaming hot standby and an
 * HAProxy in front that reaches whichever of them is the primary. The suite kills the primary
 * (SIGKILL, no clean shutdown), promotes the standby and checks what the coordinator kept.
 *
 * Built from Debian's PostgreSQL 15 tools (postgresql-common: pg_createcluster, pg_ctlcluster,
 * pg_dropcluster, pg_lsclusters) and Debian's haproxy, as root; the clusters are owned and run by
 * the postgres user (pg_ctlcluster switches to it; pg_basebackup runs through runuser). Two
 * clusters, `<name>_primary` and `<name>_standby`, both with trust auth on 127.0.0.1 only. The
 * machine's own cluster (`main`, port 5432) is never touched.
 *
 * Replication: the standby is a `pg_basebackup -R` of the primary with a physical replication
 * slot. With `synchronous` (the default) the primary's synchronous_standby_names names the
 * standby and synchronous_commit is `on`: a commit is acknowledged once the standby has flushed
 * its WAL to disk. That is what "no acknowledged commit is lost on failover" needs: promotion
 * replays every WAL record the standby has flushed before it accepts writes. `remote_apply` would
 * also make the commit visible to reads on the standby before the acknowledgement (reading your
 * own writes from a hot standby), which the proxy never does (it reaches the primary only), for
 * the cost of waiting for replay on every commit. The setting is made on the primary after the
 * base backup, so the promoted standby has no synchronous standby of its own (its commits would
 * otherwise wait forever for one). With `synchronous: false` replication is asynchronous and an
 * acknowledged commit can be lost by the failover: the suite can show that too.
 *
 * The proxy: HAProxy in TCP mode with both servers. Its health check speaks the Postgres protocol
 * (`option pgsql-check` only sees that a server answers, and a standby answers too): it sends a
 * startup message (trust auth, so no password exchange), `SELECT pg_is_in_recovery()` and a
 * Terminate, and passes only on a DataRow that says `f`. A standby that is not promoted yet
 * answers `t` and closes, so it fails the check at once and never receives a connection (the
 * proxy would otherwise send writes there, which fail with "cannot execute ... in a read-only
 * transaction"). The standby is also declared `backup`, so it is used only while the primary is
 * down. `promoteStandby()` puts the old primary into maintenance through HAProxy's runtime API
 * before promoting, so the proxy never goes back to it even if it came back (it does not: it
 * stays dead). `on-marked-down shutdown-sessions` cuts the sessions of a server marked down.
 * Checks every 500 ms (250 ms while a server is failing), down after 2 failures, up after 1
 * success. HAProxy 2.6 starts both servers UP until their checks say otherwise: start waits until
 * the proxy has marked the standby down.
 *
 * Between the kill and the promotion's end the proxy has no server: HAProxy accepts a client's
 * connection and closes it (the client sees "Connection terminated unexpectedly" or ECONNRESET);
 * one that arrives before the dead primary is marked down waits for HAProxy's retries (two, 500 ms
 * apart) first. Clients must retry, as the coordinator's pool does on a new connection. A write
 * whose commit failed that way is uncertain: the standby may have flushed it before the kill, and
 * then it is there after the promotion although its client saw an error.
 *
 * Synchronous replication has one more consequence the suite must not trip on: while the standby
 * is down, every commit on the primary waits (without a timeout). This module never stops the
 * standby before the primary.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';

export interface ReplicatedPostgresOptions {
  /** Names the clusters `<name>_primary` and `<name>_standby` and the proxy's folder: lower-case letters, digits, `_`. */
  name: string;
  primaryPort: number;
  standbyPort: number;
  proxyPort: number;
  /** Commits wait for the standby to flush their WAL (synchronous_commit = on); default true. */
  synchronous?: boolean;
}

export interface ReplicatedPostgres {
  /** Connection URL through the proxy (HAProxy) that reaches the current primary: postgres://postgres@127.0.0.1:<proxyPort>/postgres */
  readonly url: string;
  readonly primaryUrl: string;
  readonly standbyUrl: string;
  /** SIGKILL the primary's postmaster (no clean shutdown). */
  killPrimary(): Promise<void>;
  /** Promote the standby (pg_ctl promote / pg_promote()), wait until it accepts writes; the proxy then reaches it. */
  promoteStandby(): Promise<void>;
  /** Stop everything and drop both clusters and the proxy's files. Idempotent. */
  stop(): Promise<void>;
}

const PG_VERSION = '15';
const PG_BIN = `/usr/lib/postgresql/${PG_VERSION}/bin`;
/** The Debian packages that bring what this module runs (for the error that names what is missing). */
const APT_PACKAGES = `postgresql-${PG_VERSION} (with postgresql-common) and haproxy`;
const PROXY_NAME = 'postgres';

/** Settings of both clusters; a hot standby needs max_connections, max_prepared_transactions... at least the primary's. */
const CLUSTER_SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  wal_level: 'replica',
  max_wal_senders: '10',
  max_replication_slots: '10',
  max_prepared_transactions: '64',
  hot_standby: 'on',
  ssl: 'off',
};

const HBA = [
  '# Written by scripts/lib/pg-failover.ts: a throwaway test pair, trust on loopback only.',
  'local all all trust',
  'local replication all trust',
  'host all all 127.0.0.1/32 trust',
  'host replication all 127.0.0.1/32 trust',
  '',
].join('\n');

const log = (name: string, line: string): void => console.log(`[pg-failover ${name}] ${line}`);

interface ClusterListing {
  version: number;
  cluster: string;
  port: string;
  running: number;
  pgdata: string;
}

async function run(command: string, args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(command, args, { cwd: '/', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    const detail = [stderr, stdout].filter((text) => text && text.trim()).join('\n').trim();
    throw new Error(`${command} ${args.join(' ')} failed: ${detail || (error as Error).message}`);
  }
}

/** The clusters postgresql-common knows (pg_lsclusters). */
export async function listClusters(): Promise<ClusterListing[]> {
  const parsed: unknown = JSON.parse((await run('pg_lsclusters', ['--json'])) || '[]');
  if (!Array.isArray(parsed)) throw new Error('pg_lsclusters --json did not print a list');
  return parsed.map((entry: unknown) => {
    const e = entry as Record<string, unknown>;
    return { version: Number(e.version), cluster: String(e.cluster), port: String(e.port), running: Number(e.running), pgdata: String(e.pgdata) };
  });
}

/** The cluster names this module makes for a pair called `name`. */
export function clusterNames(name: string): { primary: string; standby: string } {
  return { primary: `${name}_primary`, standby: `${name}_standby` };
}

const dataDir = (cluster: string): string => `/var/lib/postgresql/${PG_VERSION}/${cluster}`;
const configDir = (cluster: string): string => `/etc/postgresql/${PG_VERSION}/${cluster}`;

/** State, parent and process group of a process from /proc, or null when it is gone (or a zombie). */
async function procStat(pid: number): Promise<{ state: string; ppid: number; pgrp: number } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    return state === 'Z' || state === 'X' ? null : { state, ppid: Number(fields[1]), pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

/** Live processes of the postmaster `pid`: itself, its children and its process group (pg_ctl makes it a session leader). */
async function groupMembers(pid: number): Promise<number[]> {
  const members: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await procStat(Number(entry));
    if (stat && (Number(entry) === pid || stat.pgrp === pid || stat.ppid === pid)) members.push(Number(entry));
  }
  return members;
}

/**
 * The postmaster's pid from its data directory, or null when it has none or is gone. A stale pid
 * file's pid may belong to another process by now: the process must be a postgres of this data
 * directory (its command line names it).
 */
async function postmasterPid(cluster: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(dataDir(cluster), 'postmaster.pid'), 'utf8')).split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !(await procStat(pid))) return null;
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return args[0]?.endsWith('/postgres') && args.includes(dataDir(cluster)) ? pid : null;
  } catch {
    return null;
  }
}

/** SIGKILLs a postmaster, its process group and its children at once; resolves with when (performance.now()). */
async function killPostmaster(pid: number): Promise<number> {
  const members = await groupMembers(pid);
  const at = performance.now();
  signal(pid, 'SIGKILL');
  signal(-pid, 'SIGKILL');
  for (const member of members) signal(member, 'SIGKILL');
  return at;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await sleep(everyMs);
  }
}

/** One query on a connection of its own. */
async function queryOnce<R extends pg.QueryResultRow>(url: string, sql: string, timeoutMs = 2_000): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** One command on HAProxy's runtime API (its admin socket); resolves with the answer. */
function haproxyCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let answer = '';
    socket.setEncoding('utf8');
    socket.setTimeout(2_000, () => socket.destroy(new Error(`HAProxy's runtime API did not answer "${command}"`)));
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(answer));
    socket.once('connect', () => socket.end(`${command}\n`));
  });
}

/** The status (UP, DOWN, MAINT, "UP 1/2"...) of each server of the proxy, from `show stat`. */
async function serverStatus(socketPath: string): Promise<Map<string, string>> {
  const lines = (await haproxyCommand(socketPath, 'show stat')).split('\n');
  const header = (lines[0] ?? '').replace(/^# /, '').split(',');
  const [px, sv, status] = ['pxname', 'svname', 'status'].map((column) => header.indexOf(column));
  const result = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const fields = line.split(',');
    if (fields[px] === PROXY_NAME && fields[sv] !== 'FRONTEND' && fields[sv] !== 'BACKEND' && fields[status] !== undefined) result.set(fields[sv], fields[status]);
  }
  return result;
}

/** A Postgres protocol v3 startup message, a simple Query and a Terminate, as HAProxy's send-binary hex. */
function checkProbeHex(): string {
  const params = Buffer.from('user\0postgres\0database\0postgres\0application_name\0haproxy-check\0\0', 'latin1');
  const startup = Buffer.alloc(8 + params.length);
  startup.writeInt32BE(startup.length, 0);
  startup.writeInt32BE(196608, 4); // protocol 3.0
  params.copy(startup, 8);
  const sql = Buffer.from('SELECT pg_is_in_recovery()\0', 'latin1');
  const query = Buffer.alloc(5 + sql.length);
  query.write('Q', 0, 'latin1');
  query.writeInt32BE(4 + sql.length, 1);
  sql.copy(query, 5);
  const terminate = Buffer.from([0x58, 0, 0, 0, 4]); // 'X'
  return Buffer.concat([startup, query, terminate]).toString('hex');
}

/** The DataRow of a one-column answer `f`: 'D', length 11, 1 column, 1 byte, 'f'. */
const PRIMARY_ROW_HEX = '440000000b00010000000166';

function haproxyConfig(options: ReplicatedPostgresOptions, socketPath: string): string {
  return [
    '# Written by scripts/lib/pg-failover.ts; HAProxy runs in the foreground (-db), not as a service.',
    'global',
    '    maxconn 2000',
    `    stats socket ${socketPath} mode 600 level admin`,
    '',
    'defaults',
    '    mode tcp',
    // Loopback: a live server accepts at once. It also bounds the turn-around before a retry
    // (min(timeout connect, 1 s)), which a client connecting to a freshly killed primary waits.
    '    timeout connect 500ms',
    // Idle pooled connections stay open for the length of a run.
    '    timeout client 1h',
    '    timeout server 1h',
    // A killed server refuses the check's connection at once; the timeout only counts for a hung
    // one, and is long enough that a loaded machine does not mark a live primary down.
    '    timeout check 2s',
    '    retries 2',
    '',
    `listen ${PROXY_NAME}`,
    `    bind 127.0.0.1:${options.proxyPort}`,
    // The check: startup (trust), SELECT pg_is_in_recovery(), Terminate, all in one send; pass on the
    // DataRow `f` only. A standby answers `t` and closes the connection, so it fails at once.
    '    option tcp-check',
    '    tcp-check connect',
    `    tcp-check send-binary ${checkProbeHex()} comment startup,\\ SELECT\\ pg_is_in_recovery(),\\ Terminate`,
    `    tcp-check expect binary ${PRIMARY_ROW_HEX} comment not\\ a\\ primary\\ (pg_is_in_recovery()\\ is\\ not\\ false)`,
    '    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
    `    server primary 127.0.0.1:${options.primaryPort} check`,
    `    server standby 127.0.0.1:${options.standbyPort} check backup`,
    '',
  ].join('\n');
}

function validate(options: ReplicatedPostgresOptions): void {
  if (!/^[a-z][a-z0-9_]{0,39}$/.test(options.name)) throw new Error(`pg-failover: the name must be lower-case letters, digits and _ (got "${options.name}")`);
  const ports = [options.primaryPort, options.standbyPort, options.proxyPort];
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1024 || port > 65535) throw new Error(`pg-failover: port ${port} is not between 1024 and 65535`);
    if (port === 5432) throw new Error('pg-failover: port 5432 is the machine\'s own Postgres; use other ports');
  }
  if (new Set(ports).size !== ports.length) throw new Error('pg-failover: the three ports must differ');
}

function requireTools(): void {
  const missing = ['/usr/bin/pg_createcluster', '/usr/bin/pg_ctlcluster', '/usr/bin/pg_dropcluster', '/usr/bin/pg_lsclusters', `${PG_BIN}/pg_basebackup`, `${PG_BIN}/postgres`, '/usr/sbin/haproxy', '/usr/sbin/runuser']
    .filter((path) => !existsSync(path));
  if (missing.length > 0) throw new Error(`pg-failover needs ${missing.join(', ')}: apt-get install ${APT_PACKAGES}`);
  if (process.getuid?.() !== 0) throw new Error('pg-failover runs as root (it creates clusters with pg_createcluster and runs them as the postgres user)');
}

/** Stops (immediately) and drops one of our clusters, and whatever is left of it on disk. */
async function dropCluster(cluster: string): Promise<void> {
  if (cluster === 'main') throw new Error('pg-failover never drops the cluster main');
  const listed = (await listClusters()).find((c) => c.cluster === cluster && c.version === Number(PG_VERSION));
  const pid = await postmasterPid(cluster);
  if (listed?.running || pid !== null) {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', PG_VERSION, cluster, 'stop', '-m', 'immediate']).catch(() => undefined);
    if (pid !== null) {
      await killPostmaster(pid);
      await until(`the processes of ${cluster} to end`, async () => (await groupMembers(pid)).length === 0, 10_000);
    }
  }
  if (listed) await run('pg_dropcluster', [PG_VERSION, cluster]);
  // What an interrupted pg_createcluster or pg_dropcluster may have left.
  await rm(dataDir(cluster), { recursive: true, force: true });
  await rm(configDir(cluster), { recursive: true, force: true });
  await rm(`/var/log/postgresql/postgresql-${PG_VERSION}-${cluster}.log`, { force: true });
}

/** Kills a leftover HAProxy of an earlier run of the same name (its pid file), if it is ours. */
async function killLeftoverProxy(stateDir: string): Promise<void> {
  const pidFile = join(stateDir, 'haproxy.pid');
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
  if (!Number.isInteger(pid) || pid <= 0) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('haproxy') || !cmdline.includes(stateDir)) return;
  signal(pid, 'SIGKILL');
  await until('the leftover HAProxy to end', async () => (await procStat(pid)) === null, 5_000);
}

async function createCluster(cluster: string, port: number): Promise<void> {
  await run('pg_createcluster', [PG_VERSION, cluster, '--port', String(port), '--start-conf', 'manual']);
  // Debian's postgresql.conf includes conf.d/ (pg_createcluster's -o quotes some values wrongly: 127.0.0.1).
  const settings = Object.entries(CLUSTER_SETTINGS).map(([key, value]) => `${key} = '${value}'`);
  await writeFile(join(configDir(cluster), 'conf.d', 'pg-failover.conf'), `# Written by scripts/lib/pg-failover.ts\n${settings.join('\n')}\n`);
  await writeFile(join(configDir(cluster), 'pg_hba.conf'), HBA);
}

const startCluster = (cluster: string) => run('pg_ctlcluster', ['--skip-systemctl-redirect', PG_VERSION, cluster, 'start']);

/** The folder of the proxy's files (config, pid, log, runtime API socket) of a pair called `name`. */
export const proxyStateDir = (name: string): string => join(tmpdir(), `pg-failover-${name}`);

/**
 * Removes whatever a pair called `name` left (an interrupted run): kills its proxy, stops and
 * drops its two clusters, removes the proxy's folder. startReplicatedPostgres() does this first.
 */
export async function removeReplicatedPostgres(name: string): Promise<void> {
  validate({ name, primaryPort: 1024, standbyPort: 1025, proxyPort: 1026 });
  const clusters = clusterNames(name);
  const stateDir = proxyStateDir(name);
  await killLeftoverProxy(stateDir);
  await dropCluster(clusters.standby);
  await dropCluster(clusters.primary);
  await rm(stateDir, { recursive: true, force: true });
}

/**
 * What the proxy of a pair called `name` thinks of its two servers, `primary` and `standby`:
 * HAProxy's status (UP, DOWN, MAINT, "UP 1/2" while rising...).
 */
export function proxyServerStatus(name: string): Promise<Map<string, string>> {
  return serverStatus(join(proxyStateDir(name), 'admin.sock'));
}

export async function startReplicatedPostgres(options: ReplicatedPostgresOptions): Promise<ReplicatedPostgres> {
  validate(options);
  requireTools();
  const { name, primaryPort, standbyPort, proxyPort } = options;
  const synchronous = options.synchronous ?? true;
  const clusters = clusterNames(name);
  const stateDir = proxyStateDir(name);
  const socketPath = join(stateDir, 'admin.sock');
  const urlAt = (port: number) => `postgres://postgres@127.0.0.1:${port}/postgres`;
  const url = urlAt(proxyPort);
  const primaryUrl = urlAt(primaryPort);
  const standbyUrl = urlAt(standbyPort);
  const started = performance.now();

  // Leftovers of an earlier run that did not stop: its proxy, its clusters, its files.
  await removeReplicatedPostgres(name);
  for (const port of [primaryPort, standbyPort, proxyPort]) {
    if (await listening(port)) throw new Error(`pg-failover: something else listens on 127.0.0.1:${port}`);
  }
  const taken = (await listClusters()).find((c) => [primaryPort, standbyPort].includes(Number(c.port)));
  if (taken) throw new Error(`pg-failover: cluster ${taken.version}/${taken.cluster} is configured on port ${taken.port}`);
  await mkdir(stateDir, { recursive: true });

  let proxy: ChildProcess | null = null;
  let killedAt: number | null = null;
  let stopping: Promise<void> | null = null;

  const stop = (): Promise<void> => {
    // One stop at a time, and done once; a stop that failed may be tried again.
    stopping ??= (async () => {
      if (proxy && proxy.exitCode === null && proxy.signalCode === null) {
        const exited = new Promise<void>((resolve) => proxy?.once('exit', () => resolve()));
        proxy.kill('SIGTERM');
        await Promise.race([exited, sleep(3_000)]);
        if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
      }
      await removeReplicatedPostgres(name);
    })().catch((error: unknown) => {
      stopping = null;
      throw error;
    });
    return stopping;
  };

  try {
    // Both clusters at once (initdb); the standby's data directory is replaced below.
    await Promise.all([createCluster(clusters.primary, primaryPort), createCluster(clusters.standby, standbyPort)]);
    await startCluster(clusters.primary);
    await until('the primary to accept connections', () => queryOnce(primaryUrl, 'SELECT 1'), 30_000);

    // The standby: its cluster's data directory replaced by a base backup of the primary
    // (-R: standby.signal and primary_conninfo; -C -S: a physical slot, so the primary keeps the
    // WAL the standby has not received yet). The application_name is what synchronous_standby_names names.
    // Emptied, not removed: pg_basebackup (as postgres) may not create it in /var/lib/postgresql/15.
    for (const entry of await readdir(dataDir(clusters.standby))) await rm(join(dataDir(clusters.standby), entry), { recursive: true, force: true });
    await run('runuser', [
      '-u', 'postgres', '--', `${PG_BIN}/pg_basebackup`,
      '-D', dataDir(clusters.standby), '-R', '-X', 'stream', '-c', 'fast', '-C', '-S', clusters.standby,
      '-d', `host=127.0.0.1 port=${primaryPort} user=postgres application_name=${clusters.standby}`,
    ]);
    await startCluster(clusters.standby);
    await until(
      'the standby to stream from the primary',
      async () => (await queryOnce<{ n: number }>(primaryUrl, `SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = '${clusters.standby}' AND state = 'streaming'`))[0].n === 1,
      30_000,
    );

    if (synchronous) {
      await queryOnce(primaryUrl, `ALTER SYSTEM SET synchronous_standby_names = '"${clusters.standby}"'`);
      await queryOnce(primaryUrl, `ALTER SYSTEM SET synchronous_commit = 'on'`);
      await queryOnce(primaryUrl, 'SELECT pg_reload_conf()');
      await until(
        'the standby to be the synchronous one',
        async () => (await queryOnce<{ sync_state: string }>(primaryUrl, `SELECT sync_state FROM pg_stat_replication WHERE application_name = '${clusters.standby}'`))[0]?.sync_state === 'sync',
        10_000,
      );
    }

    // The proxy, in the foreground, its output in the state folder.
    const configPath = join(stateDir, 'haproxy.cfg');
    await writeFile(configPath, haproxyConfig(options, socketPath));
    await run('/usr/sbin/haproxy', ['-c', '-q', '-f', configPath]);
    const logFd = openSync(join(stateDir, 'haproxy.log'), 'a');
    try {
      proxy = spawn('/usr/sbin/haproxy', ['-db', '-f', configPath], { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    proxy.unref();
    const spawnedProxy = proxy;
    await new Promise<void>((resolve, reject) => {
      spawnedProxy.once('spawn', resolve);
      spawnedProxy.once('error', reject);
    });
    await writeFile(join(stateDir, 'haproxy.pid'), String(spawnedProxy.pid));
    await until(
      'the proxy to reach the primary',
      async () => (await queryOnce<{ port: number }>(url, 'SELECT inet_server_port() AS port'))[0].port === primaryPort,
      15_000,
    );
    // HAProxy 2.6 starts every server UP until `fall` checks fail: wait until it has seen that the
    // standby is not a primary (it is a backup too, so it got no connection meanwhile).
    await until(
      'the proxy to mark the standby down (not a primary)',
      async () => {
        const status = await serverStatus(socketPath);
        return status.get('primary') === 'UP' && status.get('standby') === 'DOWN';
      },
      15_000,
      25,
    );
    log(name, `primary :${primaryPort}, ${synchronous ? 'synchronous' : 'asynchronous'} standby :${standbyPort}, proxy :${proxyPort} ready in ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  return {
    url,
    primaryUrl,
    standbyUrl,

    async killPrimary(): Promise<void> {
      const pid = await postmasterPid(clusters.primary);
      if (pid === null) throw new Error(`pg-failover: the primary ${clusters.primary} is not running`);
      // The postmaster first, then the rest of its process group (pg_ctl made it a session leader):
      // backends and the WAL sender die at once, as in a machine crash, instead of lingering
      // until they notice the postmaster is gone.
      killedAt = await killPostmaster(pid);
      await until('the primary\'s processes to end', async () => (await groupMembers(pid)).length === 0, 10_000, 10);
      log(name, `primary killed (SIGKILL, postmaster ${pid} and its process group)`);
    },

    async promoteStandby(): Promise<void> {
      const begun = performance.now();
      // Fence the old primary in the proxy first: it never gets a connection again.
      await haproxyCommand(socketPath, `set server ${PROXY_NAME}/primary state maint`);
      await haproxyCommand(socketPath, `shutdown sessions server ${PROXY_NAME}/primary`);
      const [{ recovering }] = await queryOnce<{ recovering: boolean }>(standbyUrl, 'SELECT pg_is_in_recovery() AS recovering');
      if (!recovering) log(name, 'the standby was promoted already');
      else {
        const [{ promoted }] = await queryOnce<{ promoted: boolean }>(standbyUrl, 'SELECT pg_promote(true, 60) AS promoted', 65_000);
        if (!promoted) throw new Error('pg-failover: pg_promote() did not promote the standby within 60 s');
      }
      await until('the promoted standby to accept writes', () => queryOnce(standbyUrl, 'SELECT txid_current()'), 30_000);
      const writable = performance.now();
      await until('the proxy to mark the promoted standby up', async () => (await serverStatus(socketPath)).get('standby')?.startsWith('UP'), 15_000, 25);
      await until(
        'a write through the proxy on the promoted standby',
        async () => (await queryOnce<{ port: number }>(url, 'SELECT inet_server_port() AS port, txid_current()'))[0].port === standbyPort,
        15_000,
        25,
      );
      const throughProxy = performance.now();
      const since = killedAt ?? begun;
      log(
        name,
        `standby promoted: accepts writes ${Math.round(writable - since)} ms and through the proxy ${Math.round(throughProxy - since)} ms after the ${killedAt === null ? 'promotion began' : 'kill'}`,
      );
    },

    stop,
  };
}
