/**
 * Starts the real processes of the product (coordinator, account services) for the demo, the
 * end-to-end tests and the benchmarks, and stops them all. Processes run from the compiled
 * `dist/` (run `npm run build` first) and speak real HTTP over loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TransactionView } from '@nest-dtx/protocol';
import type { TransactionClient } from '@nest-dtx/sdk';
import type { CrashPoint } from '../../apps/coordinator/src/engine/crash-points.js';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root');
    dir = parent;
  }
  return dir;
}

export const ROOT = findRoot();
export const LOG_DIR = resolve(ROOT, '.data/logs');
const ENTRY = {
  // DTX_COORDINATOR_ENTRY: another build's main.js, so the bench measures an older coordinator
  // with today's harness (same client, participants and probes) in the same run conditions.
  coordinator: process.env.DTX_COORDINATOR_ENTRY ? resolve(process.env.DTX_COORDINATOR_ENTRY) : resolve(ROOT, 'dist/apps/coordinator/src/main.js'),
  account: resolve(ROOT, 'dist/apps/account/src/main.js'),
  order: resolve(ROOT, 'dist/apps/order/src/main.js'),
  inventory: resolve(ROOT, 'dist/apps/inventory/src/main.js'),
  'mariadb-bank': resolve(ROOT, 'dist/apps/mariadb-bank/src/main.js'),
  loyalty: resolve(ROOT, 'dist/apps/loyalty/src/main.js'),
  'event-counter': resolve(ROOT, 'dist/apps/event-counter/src/main.js'),
};

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The brokers of the rabbitmq and nats transports: the coordinator's RABBITMQ_URL / NATS_URL and the participants' own. */
export const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A port nobody listens on right now, for a server the caller starts next. Taken below the
 * kernel's ephemeral range (ip_local_port_range, 32768 and up here), at random: a port the
 * kernel handed out for `listen(0)` and closed again is also the next source port of any
 * outgoing connection on the machine, and a parallel test's connection took one between the
 * check and the listen (EADDRINUSE in CI). Below that range only another listener can take it.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const port = FREE_PORT_FROM + Math.floor(Math.random() * (FREE_PORT_TO - FREE_PORT_FROM));
    if (await canListen(port)) return port;
    if (tries >= 200) throw new Error(`no free port found between ${FREE_PORT_FROM} and ${FREE_PORT_TO}`);
  }
}

const FREE_PORT_FROM = 15_000;
const FREE_PORT_TO = 32_000;

function canListen(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const server = createServer();
    server.unref();
    server.once('error', () => answer(false));
    server.listen(port, '127.0.0.1', () => server.close(() => answer(true)));
  });
}

/** Thrown by an `until` check that knows waiting longer cannot help (the process it waits for exited). */
export class StopWaiting extends Error {}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs` (at once when the check throws StopWaiting). */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: string | null = null;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      lastError = error instanceof Error ? error.message : JSON.stringify(error);
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
}

/** One key per role for a coordinator started with keys; `API_KEYS` is the variable to give it. */
export interface StackApiKeys {
  admin: string;
  client: string;
  participant: string;
  metrics: string;
  API_KEYS: string;
}

/** Fresh random keys, one per role. */
export function generateApiKeys(): StackApiKeys {
  const key = () => randomBytes(24).toString('base64url');
  const keys = { admin: key(), client: key(), participant: key(), metrics: key() };
  return { ...keys, API_KEYS: `admin:${keys.admin},client:${keys.client},participant:${keys.participant},metrics:${keys.metrics}` };
}

/** The Authorization header for `apiKey`, or none. */
export const authHeaders = (apiKey?: string): Record<string, string> => (apiKey ? { authorization: `Bearer ${apiKey}` } : {});

export async function getJson<T>(url: string, apiKey?: string): Promise<T> {
  const response = await fetch(url, { headers: authHeaders(apiKey), signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export async function postJson<T>(url: string, body: unknown, apiKey?: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(apiKey) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

const running = new Set<ManagedProcess>();
process.once('exit', () => {
  for (const p of running) p.child?.kill('SIGKILL');
});

/**
 * Stops every process started here that still runs, and resolves with their names: the tests'
 * safety net (test/support/safety-net.ts) calls it after each test file, for what a file whose
 * set-up failed could not stop itself.
 */
export async function stopRunningProcesses(): Promise<string[]> {
  const left = [...running].filter((p) => p.alive);
  // A test may have paused one (SIGSTOP); it would take its SIGTERM only once resumed.
  for (const p of left) p.signal('SIGCONT');
  await Promise.all(left.map((p) => p.kill()));
  running.clear();
  return left.map((p) => p.name);
}

/** One child process with its log file; `kill('SIGKILL')` is a real kill -9. */
export class ManagedProcess {
  child: ChildProcess | null = null;
  private log: WriteStream | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly name: string,
    private readonly entry: string,
    readonly env: Record<string, string>,
    /** Another program than Node (then `entry` is its first argument). */
    private readonly command: { program: string; args: string[] } | null = null,
  ) {}

  get logFile(): string {
    return join(LOG_DIR, `${this.name}.log`);
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * `until(what, check)` while this process runs: once it has exited, waiting stops at once with
   * the last lines of its log (a coordinator refusing its configuration, say), rather than at the
   * timeout with a test's time-out hiding why.
   */
  untilReady<T>(what: string, check: () => Promise<T | undefined>, timeoutMs?: number): Promise<T> {
    return until(
      what,
      async () => {
        if (!this.alive) throw new StopWaiting(`${this.name} exited before ${what}; the end of ${this.logFile}:\n${this.logTail()}`);
        return check();
      },
      timeoutMs,
    );
  }

  private logTail(lines = 10): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  start(extraEnv: Record<string, string> = {}): void {
    if (this.alive) throw new Error(`${this.name} is already running`);
    mkdirSync(LOG_DIR, { recursive: true });
    this.log = createWriteStream(this.logFile, { flags: 'a' });
    // DTX_CPU_PROF_DIR=<dir>: every Node process started here writes a V8 CPU profile there when it exits (for the benchmarks).
    const profile = process.env.DTX_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DTX_CPU_PROF_DIR}`] : [];
    const [program, args] = this.command ? [this.command.program, this.command.args] : [process.execPath, [...profile, this.entry]];
    const child = spawn(program, args, {
      env: { ...process.env, ...this.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    this.child = child;
    running.add(this);
    this.exited = new Promise((done) => child.once('exit', (code) => done(code)));
  }

  /** Resolves with the exit code (null when killed by a signal). */
  waitExit(): Promise<number | null> {
    return this.exited;
  }

  /** Sends a signal without waiting (SIGSTOP / SIGCONT to pause and resume). */
  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child?.kill(signal);
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.child) return;
    if (this.alive) {
      this.child.kill(signal);
      const forced = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(forced);
    }
    running.delete(this);
    this.log?.end();
  }
}

export interface CoordinatorHandle {
  process: ManagedProcess;
  url: string;
  port: number;
  /** Starts (or restarts) it and waits until it answers. */
  start(extraEnv?: Record<string, string>): Promise<void>;
}

/** The bank demos' coordinator settings: short retry, lease and call times, so recovery is visible within seconds. */
export const DEMO_RECOVERY_ENV = {
  RECOVERY_INTERVAL_MS: '250',
  RETRY_BASE_MS: '100',
  RETRY_MAX_MS: '1000',
  LEASE_MS: '2000',
  CALL_TIMEOUT_MS: '1000',
} as const;

/**
 * Where a process runs when not on 127.0.0.1 with a free port: its address and port, and how it
 * is launched (`ip netns exec <ns> node ...`, say: the jepsen suite's hosts in network namespaces).
 */
export interface Placement {
  host: string;
  port?: number;
  wrap?: (program: string, args: string[]) => { program: string; args: string[] };
}

const launchedBy = (entry: string, placement?: Placement): { program: string; args: string[] } | null =>
  placement?.wrap ? placement.wrap(process.execPath, [entry]) : null;

export async function coordinator(name: string, databaseUrl: string, env: Record<string, string> = {}, placement?: Placement): Promise<CoordinatorHandle> {
  const port = placement?.port ?? (await freePort());
  const host = placement?.host ?? '127.0.0.1';
  const url = `http://${host}:${port}`;
  const managed = new ManagedProcess(name, ENTRY.coordinator, {
    PORT: String(port),
    HOST: host,
    DATABASE_URL: databaseUrl,
    INSTANCE_ID: name,
    LOG_LEVEL: 'log',
    // Every participant of the tests and demos listens on 127.0.0.1; with API_KEYS the default
    // egress policy (public only) would refuse them.
    PARTICIPANT_NETWORKS: 'loopback',
    ...env,
  }, launchedBy(ENTRY.coordinator, placement));
  return {
    process: managed,
    url,
    port,
    async start(extraEnv = {}) {
      managed.start(extraEnv);
      await managed.untilReady(`${name} to answer`, async () => {
        // Open even when the coordinator requires API keys; it listens only once its database is ready.
        return (await fetch(`${url}/health/live`)).ok ? true : undefined;
      });
    },
  };
}

export interface ServiceHandle {
  process: ManagedProcess;
  /** The service's own HTTP API (and its participant routes when it uses HTTP). */
  url: string;
  participant: string;
  transport: ParticipantTransport;
  /** Starts (or restarts) it, with `extraEnv` on top of its own (a CRASH_AFTER_PHASE hook, say), and waits until it is registered and answers. */
  start(extraEnv?: Record<string, string>): Promise<void>;
}
/** Kept for the bank demos: an account service is a participant service. */
export type AccountHandle = ServiceHandle;

export type ParticipantTransport = 'http' | 'tcp' | 'redis' | 'rabbitmq' | 'nats';

interface RegisteredParticipant {
  name: string;
  transport: string;
  endpoint: string | null;
  host: string | null;
  port: number | null;
}

/**
 * A participant service (account, order, inventory, or the polyglot demo's mariadb-bank and loyalty) as a real process, registered under
 * `participant` and called by the coordinator over `transport`.
 */
export async function participantService(
  app: 'account' | 'order' | 'inventory' | 'mariadb-bank' | 'loyalty',
  participant: string,
  databaseUrl: string,
  coordinatorUrl: string,
  transport: ParticipantTransport = 'http',
  /** Where the coordinator should call it (a fault-injecting proxy, say); its own address by default. */
  publicUrl?: string,
  port?: number,
  /** Key with the participant role, when the coordinator was started with API_KEYS. */
  apiKey?: string,
  /** Another address than 127.0.0.1, and how the process is launched (the jepsen suite's network namespaces). */
  placement?: Placement,
): Promise<ServiceHandle> {
  port ??= placement?.port ?? (await freePort());
  const tcpPort = transport === 'tcp' ? await freePort() : 0;
  const host = placement?.host ?? '127.0.0.1';
  const url = `http://${host}:${port}`;
  const managed = new ManagedProcess(participant, ENTRY[app], {
    PORT: String(port),
    HOST: host,
    DATABASE_URL: databaseUrl,
    COORDINATOR_URL: coordinatorUrl,
    PARTICIPANT_NAME: participant,
    ...(publicUrl ? { PUBLIC_URL: publicUrl } : {}),
    TRANSPORT: transport,
    ...(apiKey ? { COORDINATOR_API_KEY: apiKey } : {}),
    ...(transport === 'tcp' ? { TCP_PORT: String(tcpPort) } : {}),
    ...(transport === 'redis' ? { REDIS_URL } : {}),
    ...(transport === 'rabbitmq' ? { RABBITMQ_URL } : {}),
    ...(transport === 'nats' ? { NATS_URL } : {}),
  }, launchedBy(ENTRY[app], placement));
  const registeredHere = (p: RegisteredParticipant): boolean =>
    p.name === participant &&
    p.transport === transport &&
    (transport === 'http' ? p.endpoint === `${publicUrl ?? url}/tx` : transport === 'tcp' ? p.port === tcpPort : true);
  return {
    process: managed,
    url,
    participant,
    transport,
    async start(extraEnv = {}) {
      managed.start(extraEnv);
      await managed.untilReady(`${participant} to register`, async () => {
        const list = await getJson<RegisteredParticipant[]>(`${coordinatorUrl}/v1/participants`, apiKey);
        return list.some(registeredHere) && (await fetch(url)).status < 500 ? true : undefined;
      });
    },
  };
}

/** A demo app that is no participant (the outbox demo's event counter) as a process named `name`, not started yet. */
export function appProcess(app: 'event-counter', name: string, env: Record<string, string>): ManagedProcess {
  return new ManagedProcess(name, ENTRY[app], env);
}

export function accountService(
  participant: string,
  databaseUrl: string,
  coordinatorUrl: string,
  transport: ParticipantTransport = 'http',
  /** Key with the participant role, when the coordinator was started with API_KEYS. */
  apiKey?: string,
): Promise<ServiceHandle> {
  return participantService('account', participant, databaseUrl, coordinatorUrl, transport, undefined, undefined, apiKey);
}

export interface AccountsSummary {
  accounts: { id: string; balance: number; frozen: number }[];
  totalBalance: number;
  totalFrozen: number;
  pendingCredits: number;
}

export const accountsOf = (bank: AccountHandle): Promise<AccountsSummary> => getJson<AccountsSummary>(`${bank.url}/accounts`);

export async function openAccount(bank: AccountHandle, id: string, balance: number): Promise<void> {
  const { status } = await postJson(`${bank.url}/accounts`, { id, balance });
  if (status !== 201) throw new Error(`opening ${id} on ${bank.participant} failed: ${status}`);
}

/** Runs one of the compiled scripts (`dist/scripts/<name>.js`) to its end, as a newcomer runs it, with its whole output. */
export function runScript(name: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve(ROOT, `dist/scripts/${name}.js`), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => done({ code, output }));
  });
}

/** Prints a table the demos end with: text columns left-aligned, the columns from `numbersFrom` on right-aligned. */
export function printTable(header: string[], lines: string[][], numbersFrom: number): void {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => cells.map((c, i) => (i >= numbersFrom ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ');
  console.log(`\n${format(header)}\n${widths.map((w) => '-'.repeat(w)).join('-+-')}`);
  for (const line of lines) console.log(format(line));
}

/** Resolves with the transaction once it has ended (committed or rolled back). */
export function finished(client: TransactionClient, gid: string): Promise<TransactionView> {
  return until(`${gid} to finish`, async () => {
    const view = await client.get(gid);
    return view.status === 'committed' || view.status === 'rolled_back' ? view : undefined;
  }, 60_000, 200);
}

/**
 * The demos' coordinator crash: restarts the coordinator set to kill itself (-9) right after it
 * has decided `gid`, lets `begin` start that transaction, waits for the crash, starts the
 * coordinator again and resolves once its recovery has finished the transaction.
 */
export function killCoordinatorAfterDecision(coord: CoordinatorHandle, client: TransactionClient, gid: string, begin: () => Promise<unknown>): Promise<TransactionView> {
  return killCoordinatorAt(coord, client, gid, 'after_decision', begin);
}

/**
 * The same crash at another point of the coordinator's (apps/coordinator/src/engine/crash-points.ts),
 * `mid_phase2` say: one phase-2 call answered, the others possibly in flight.
 */
export async function killCoordinatorAt(coord: CoordinatorHandle, client: TransactionClient, gid: string, point: CrashPoint, begin: () => Promise<unknown>): Promise<TransactionView> {
  await coord.process.kill();
  await coord.start({ DTX_TEST_CRASH_AT: point, DTX_TEST_CRASH_GID_PREFIX: gid });
  const answer = begin().then(() => 'answered', () => 'no answer (the coordinator died)');
  const exit = await coord.process.waitExit();
  console.log(`  coordinator exited (code ${exit ?? 'SIGKILL'}); client saw: ${await answer}; restarting it`);
  await coord.start();
  return finished(client, gid);
}
