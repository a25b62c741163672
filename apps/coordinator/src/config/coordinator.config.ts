import { hostname } from 'node:os';
import { plainToInstance, Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, validateSync } from 'class-validator';
import { isLoopbackHost, natsConnectionOptions } from '@nest-dtx/protocol';
import { ApiKeyRing, parseApiKeys } from '../auth/api-keys.js';
import { EgressPolicy } from '../participants/egress-policy.js';
import { parseParticipantHosts, type ParticipantHostList } from '../participants/participant-hosts.js';

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() !== '' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

const toBoolean = ({ value }: { value: unknown }): unknown => {
  const word = typeof value === 'string' ? value.trim().toLowerCase() : value;
  return word === 'true' || word === '1' ? true : word === 'false' || word === '0' ? false : value;
};

/** HTTP_IDLE_TIMEOUT_MS when unset and the silences it must outlast are shorter. */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * The environment the coordinator reads (docs/configuration.md lists the same names).
 * PORT, HOST, DATABASE_URL and REDIS_URL are part of the public contract (PROTOCOL.md 7).
 */
export class CoordinatorEnv {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT: number = 7070;

  @IsOptional() @IsString()
  HOST: string = '127.0.0.1';

  @IsOptional() @IsString() @Matches(/^postgres(ql)?:\/\//, { message: 'DATABASE_URL must start with postgres:// or postgresql://' })
  DATABASE_URL?: string = undefined;

  @IsOptional() @IsString() @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must start with redis:// or rediss://' })
  REDIS_URL?: string = undefined;

  /**
   * The coordinator's RabbitMQ (amqp:// or amqps://): it carries the calls of participants
   * registered with transport rabbitmq, request/reply and publish targets alike. Unset: such
   * registrations are refused (400 TRANSPORT_NOT_CONFIGURED).
   */
  @IsOptional() @IsString() @Matches(/^amqps?:\/\/[^/?#\s]+/, { message: 'RABBITMQ_URL must be an amqp:// or amqps:// URL' })
  RABBITMQ_URL?: string = undefined;

  /** The coordinator's NATS server (nats://host:port, or tls://): as RABBITMQ_URL, for transport nats. */
  @IsOptional() @IsString() @Matches(/^(nats|tls):\/\/[^/?#\s]+/, { message: 'NATS_URL must be a nats:// (or tls://) URL, e.g. nats://127.0.0.1:4222' })
  NATS_URL?: string = undefined;

  @IsOptional() @IsString()
  EMBEDDED_PG_DIR: string = '.data/coordinator-postgres';

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  EMBEDDED_PG_PORT: number = 54329;

  /**
   * Run the pending migrations at start-up, under a Postgres advisory lock (database/migrate.ts).
   * false: a migration job runs them (`nest-dtx migrate`), and the coordinator refuses to start
   * while any is pending.
   */
  @IsOptional() @Transform(toBoolean) @IsBoolean({ message: 'MIGRATIONS_RUN must be true or false' })
  MIGRATIONS_RUN: boolean = true;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(500)
  DB_POOL_SIZE: number = 20;

  /**
   * How long a coordinator started while Postgres does not answer (refused, starting up, no DNS
   * name yet) keeps trying before it exits, retrying with backoff (0.5 s doubling to 5 s, with
   * jitter); it listens only once Postgres answered and the schema is ready. The default
   * outlasts a Postgres restart or failover; 0: one attempt, no wait.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(3_600_000)
  DATABASE_CONNECT_TIMEOUT_MS: number = 120_000;

  /**
   * Group commit: write statements one instance runs at once. Writes that arrive meanwhile
   * share the next statement and its commit, so fewer means bigger batches and fewer commits.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(64)
  DB_WRITE_CONCURRENCY: number = 2;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(600_000)
  CALL_TIMEOUT_MS: number = 5_000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(600_000)
  RECOVERY_INTERVAL_MS: number = 1_000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(3_600_000)
  LEASE_MS: number = 15_000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(600_000)
  RETRY_BASE_MS: number = 200;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(3_600_000)
  RETRY_MAX_MS: number = 30_000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  ATTENTION_AFTER_ATTEMPTS: number = 8;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(600_000)
  WAIT_MAX_MS: number = 30_000;

  /**
   * A workflow's resume interval (PROTOCOL.md 3.7): an active workflow whose host recorded no
   * step and decided nothing for this long is resumed (its host called to run it again). Every
   * step puts it off again; a host answering `202` (still running) is asked again after it too,
   * unless it said when.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(86_400_000)
  WORKFLOW_RESUME_MS: number = 30_000;

  /**
   * How long a workflow step's answer, given to its host, may wait to be written with the
   * workflow's next write (its next step or its decision) before it is written on its own; 0
   * writes each answer at once. Waiting saves one commit per step; an answer a crash loses is
   * asked of its participant again (engine/held-answers.ts).
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  WORKFLOW_ANSWER_HOLD_MS: number = 200;

  /** A waiting request re-reads the store this often, in case a bus message was lost. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(600_000)
  WAIT_POLL_MS: number = 1_000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000)
  RECOVERY_BATCH_SIZE: number = 100;

  /**
   * The most calls one instance has in flight to one participant (an operator may set another
   * for a participant: PUT /admin/participants/{name}/limits). Below it the limit adapts itself
   * (PARTICIPANT_ADAPTIVE_LIMIT); calls past it wait in the participant's queue, their waiting
   * time taken from their CALL_TIMEOUT_MS.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000)
  PARTICIPANT_MAX_IN_FLIGHT: number = 128;

  /** Where a participant's adaptive limit starts, and starts again after its breaker closed. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000)
  PARTICIPANT_INITIAL_IN_FLIGHT: number = 16;

  /**
   * Whether the in-flight limit adapts (AIMD: up by one while answers come fast, down by a tenth
   * on a time-out, a transient failure or an answer slower than half CALL_TIMEOUT_MS). false:
   * it is PARTICIPANT_MAX_IN_FLIGHT, fixed.
   */
  @IsOptional() @Transform(toBoolean) @IsBoolean({ message: 'PARTICIPANT_ADAPTIVE_LIMIT must be true or false' })
  PARTICIPANT_ADAPTIVE_LIMIT: boolean = true;

  /** Calls that may wait for a participant's slot on one instance; one more is not made now, and its transaction tries again later. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000)
  PARTICIPANT_QUEUE_LIMIT: number = 2_000;

  /** Transient failures in a row (no answer, 5xx) that open a participant's circuit breaker; 0: never. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000)
  BREAKER_FAILURE_THRESHOLD: number = 5;

  /** How long an open breaker sends nothing before one probe call; doubled after each failed probe up to BREAKER_OPEN_MAX_MS. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(3_600_000)
  BREAKER_OPEN_MS: number = 1_000;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(3_600_000)
  BREAKER_OPEN_MAX_MS: number = 10_000;

  /**
   * A begin naming a participant with this many calls waiting on this instance is refused
   * (503 OVERLOADED, Retry-After) before anything is written; 0: never.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(1_000_000)
  ADMISSION_QUEUE_LIMIT: number = 1_000;

  /** Every begin is refused (503 OVERLOADED, Retry-After) while this instance has this many participant calls waiting in all; 0: never. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(10_000_000)
  ADMISSION_BACKLOG_LIMIT: number = 10_000;

  /** Transactions one instance's recovery resumes at once; the rest of a batch waits its turn. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000)
  RECOVERY_CONCURRENCY: number = 16;

  /**
   * Finished (committed, rolled_back) transactions are deleted this many days after they
   * finished; 0 keeps them forever. Must exceed any client's retry window for a begin with a
   * client-chosen gid: once deleted, the same gid begins a new transaction.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(36_500)
  RETENTION_DAYS: number = 7;

  /** Transactions deleted per statement: small, so each delete holds its locks briefly. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000)
  RETENTION_BATCH_SIZE: number = 500;

  /** How often the retention job looks for expired transactions. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000) @Max(86_400_000)
  RETENTION_INTERVAL_MS: number = 300_000;

  /** Pause between two batches of one pass, leaving Postgres to the hot path. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  RETENTION_BATCH_PAUSE_MS: number = 100;

  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,128}$/)
  INSTANCE_ID: string = `${hostname()}-${process.pid}`;

  @IsOptional() @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL: 'error' | 'warn' | 'log' | 'debug' | 'verbose' = 'log';

  /** `role[+role]:key,...` (roles client, participant, admin); unset: no authentication, loopback only. */
  @IsOptional() @IsString()
  API_KEYS?: string = undefined;

  /**
   * Comma-separated hosts participants may register, each with an optional port
   * (`bank-a:8080`, `127.0.0.1:4001`, `[::1]:4001`; no port: any port); unset: any host.
   */
  @IsOptional() @IsString()
  PARTICIPANT_HOSTS?: string = undefined;

  /**
   * The networks the coordinator may call participants in (participants/egress-policy.ts):
   * `loopback`, `private`, `public` and CIDRs, comma-separated. Link-local (metadata services),
   * unspecified, multicast, broadcast and reserved addresses are refused whatever it says. Unset:
   * `loopback,private,public` without API_KEYS, `public` with them.
   */
  @IsOptional() @IsString()
  PARTICIPANT_NETWORKS?: string = undefined;

  /**
   * The coordinator's signing secret, from which every participant's secret is derived
   * (participants/participant-signing.ts). The same on every instance; unset: one is generated
   * and kept in Postgres (table coordinator_secrets), which every instance then shares.
   */
  @IsOptional() @IsString() @Matches(/^[\x21-\x7e]{32,512}$/, { message: 'SIGNING_SECRET must be 32 to 512 visible ASCII characters (e.g. openssl rand -base64 32)' })
  SIGNING_SECRET?: string = undefined;

  /**
   * Branches (saga steps) one transaction may hold: at begin (400 VALIDATION_FAILED naming
   * `branches` / `steps`) and when one more is added to an interactive one (409 TOO_MANY_BRANCHES).
   * The request DTO's ceiling (LIMITS.maxBranches) bounds it.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1_000)
  MAX_BRANCHES_PER_TRANSACTION: number = 100;

  /** Participant names one API key may own (without keys: names in all); a new name past it is 403 PARTICIPANT_LIMIT. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100_000)
  MAX_PARTICIPANTS_PER_KEY: number = 100;

  /** Actions one participant may register (400 VALIDATION_FAILED naming `actions`); the DTO's ceiling is 200. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(200)
  MAX_ACTIONS_PER_PARTICIPANT: number = 100;

  /**
   * With API_KEYS: a client key reads, extends and decides only the transactions it began
   * (another key gets 404 TX_NOT_FOUND); admin keys see all. Without keys it changes nothing.
   */
  @IsOptional() @Transform(toBoolean) @IsBoolean({ message: 'OWNER_SCOPED_KEYS must be true or false' })
  OWNER_SCOPED_KEYS: boolean = true;

  /** Client API requests per key (or address) per minute and instance; 0: unlimited. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(100_000_000)
  RATE_LIMIT_PER_MINUTE: number = 60_000;

  /**
   * Requests refused 401 (no key, an unknown or malformed one) per client address per minute and
   * instance, a sliding one-minute window; past it, 429 RATE_LIMITED. Requests with a valid key never count.
   * 0: unlimited.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(100_000_000)
  AUTH_FAILURE_LIMIT_PER_MINUTE: number = 60;

  /** Time a connection has to send a request's headers, from its first byte; then it is closed. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(600_000)
  HTTP_HEADERS_TIMEOUT_MS: number = 10_000;

  /**
   * Time a connection has to send a whole request, headers and body; then it is closed (408).
   * It governs receiving only: a response in progress (wait: true holds one up to WAIT_MAX_MS)
   * is not cut by it.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(3_600_000)
  HTTP_REQUEST_TIMEOUT_MS: number = 30_000;

  /** Time an idle keep-alive connection is kept open between two requests. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(600_000)
  HTTP_KEEP_ALIVE_TIMEOUT_MS: number = 5_000;

  /**
   * Time a connection may stay silent in either direction (no byte read or written) before it
   * is closed: a connection that never sends anything, or a request whose answer nobody reads.
   * Must exceed WAIT_MAX_MS and CALL_TIMEOUT_MS, which an answer may be silent for; the console's live stream
   * sends a keep-alive every 25 s, so below that it reconnects now and then. Unset: 60 s, or
   * 10 s more than the longer of those two when that is more (httpIdleTimeoutMs).
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000) @Max(3_600_000)
  HTTP_IDLE_TIMEOUT_MS?: number = undefined;

  /**
   * Where the console links a transaction's trace: an http(s) URL with `{traceId}` where the 32
   * hex digits of its trace id go (Jaeger: `http://localhost:16686/trace/{traceId}`; a Grafana
   * Tempo explore URL). Unset: the console shows no trace link.
   */
  @IsOptional() @IsString() @MaxLength(2048) @Matches(/^https?:\/\/\S*\{traceId\}\S*$/, { message: 'TRACE_UI_URL must be an http:// or https:// URL with {traceId} in it' })
  TRACE_UI_URL?: string = undefined;

  /** Request headers read per request; the rest are dropped (Node's maxHeadersCount). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(2_000)
  HTTP_MAX_HEADERS: number = 100;
}

/** The typed, validated configuration every coordinator service injects. */
export class CoordinatorConfig {
  /** The configured API keys (empty when API_KEYS is unset: authentication off). */
  readonly apiKeys: ApiKeyRing;
  /** Hosts (and ports) participants may register, lower-case; null: any host. */
  readonly participantHosts: ParticipantHostList | null;
  /** The addresses the coordinator may call participants at (PARTICIPANT_NETWORKS or its default). */
  readonly participantNetworks: EgressPolicy;

  constructor(readonly env: CoordinatorEnv) {
    this.apiKeys = new ApiKeyRing(env.API_KEYS ? parseApiKeys(env.API_KEYS) : []);
    this.participantHosts = env.PARTICIPANT_HOSTS ? parseParticipantHosts(env.PARTICIPANT_HOSTS) : null;
    this.participantNetworks = env.PARTICIPANT_NETWORKS ? EgressPolicy.parse(env.PARTICIPANT_NETWORKS) : EgressPolicy.defaultFor(this.apiKeys.enabled);
  }
  get port(): number { return this.env.PORT; }
  get host(): string { return this.env.HOST; }
  get databaseUrl(): string | undefined { return this.env.DATABASE_URL; }
  get redisUrl(): string | undefined { return this.env.REDIS_URL; }
  get rabbitmqUrl(): string | undefined { return this.env.RABBITMQ_URL; }
  get natsUrl(): string | undefined { return this.env.NATS_URL; }
  get instanceId(): string { return this.env.INSTANCE_ID; }
  get migrationsRun(): boolean { return this.env.MIGRATIONS_RUN; }
  get rateLimitPerMinute(): number { return this.env.RATE_LIMIT_PER_MINUTE; }
  /** Whether transactions are scoped to the client key that began them (OWNER_SCOPED_KEYS, only with keys). */
  get ownerScopedKeys(): boolean { return this.apiKeys.enabled && this.env.OWNER_SCOPED_KEYS; }
  get authFailureLimitPerMinute(): number { return this.env.AUTH_FAILURE_LIMIT_PER_MINUTE; }
  /** The link to a trace in the operator's tracing UI (TRACE_UI_URL filled in), or null without one. */
  traceUrl(traceId: string | null): string | null {
    return traceId && this.env.TRACE_UI_URL ? traceUrlOf(this.env.TRACE_UI_URL, traceId) : null;
  }
  /** SIGNING_SECRET's bytes, or null when the coordinator keeps a generated one in Postgres. */
  get signingSecret(): Buffer | null { return this.env.SIGNING_SECRET ? Buffer.from(this.env.SIGNING_SECRET, 'utf8') : null; }
}

/** TRACE_UI_URL with every `{traceId}` replaced by the trace id. */
function traceUrlOf(template: string, traceId: string): string {
  return template.replaceAll('{traceId}', traceId);
}

/** The longest an answer in progress may be silent: a wait: true answer, or adding a branch while its participant is called. */
function longestSilenceMs(env: CoordinatorEnv): number {
  return Math.max(env.WAIT_MAX_MS, env.CALL_TIMEOUT_MS);
}

/** HTTP_IDLE_TIMEOUT_MS, or when unset 60 s, raised to outlast the longest silent answer. */
export function httpIdleTimeoutMs(env: CoordinatorEnv): number {
  return env.HTTP_IDLE_TIMEOUT_MS ?? Math.max(DEFAULT_IDLE_TIMEOUT_MS, longestSilenceMs(env) + 10_000);
}

/** Validates the environment; throws one line naming every bad variable. */
export function loadCoordinatorEnv(source: Record<string, string | undefined> = process.env): CoordinatorEnv {
  const relevant = Object.fromEntries(
    Object.entries(source).filter(([key, value]) => key in new CoordinatorEnv() && value !== undefined && value !== ''),
  );
  const env = plainToInstance(CoordinatorEnv, relevant);
  const errors = validateSync(env, { forbidUnknownValues: false });
  if (errors.length > 0) {
    const reasons = errors.map((e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`);
    throw new Error(`invalid configuration: ${reasons.join('; ')}`);
  }
  // Calls go out only while the lease has a call timeout left: a lease must outlast its calls.
  if (env.LEASE_MS < 2 * env.CALL_TIMEOUT_MS) {
    throw new Error(`invalid configuration: LEASE_MS (${env.LEASE_MS}) must be at least twice CALL_TIMEOUT_MS (${env.CALL_TIMEOUT_MS})`);
  }
  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    throw new Error(
      `invalid configuration: HTTP_HEADERS_TIMEOUT_MS (${env.HTTP_HEADERS_TIMEOUT_MS}) must not exceed HTTP_REQUEST_TIMEOUT_MS (${env.HTTP_REQUEST_TIMEOUT_MS})`,
    );
  }
  // An idle timeout shorter than an answer's silence would cut answers the API promises.
  if (httpIdleTimeoutMs(env) <= longestSilenceMs(env)) {
    throw new Error(
      `invalid configuration: HTTP_IDLE_TIMEOUT_MS (${httpIdleTimeoutMs(env)}) must exceed WAIT_MAX_MS and CALL_TIMEOUT_MS (${longestSilenceMs(env)})`,
    );
  }
  const keys = parseOrExplain('API_KEYS', env.API_KEYS, parseApiKeys);
  parseOrExplain('PARTICIPANT_HOSTS', env.PARTICIPANT_HOSTS, parseParticipantHosts);
  parseOrExplain('PARTICIPANT_NETWORKS', env.PARTICIPANT_NETWORKS, (spec) => EgressPolicy.parse(spec));
  parseOrExplain('RABBITMQ_URL', env.RABBITMQ_URL, (url) => new URL(url));
  parseOrExplain('NATS_URL', env.NATS_URL, natsConnectionOptions);
  // Filled in, the template must be a URL a browser can open.
  parseOrExplain('TRACE_UI_URL', env.TRACE_UI_URL, (template) => new URL(traceUrlOf(template, '0'.repeat(32))));
  // Without keys anyone who reaches the port may commit, roll back and register: refuse to
  // listen where others can reach it rather than silently narrow HOST to loopback.
  if ((keys?.length ?? 0) === 0 && !isLoopbackHost(env.HOST)) {
    throw new Error(`invalid configuration: HOST ${env.HOST} is reachable from other machines; set API_KEYS, or listen on 127.0.0.1`);
  }
  return env;
}

/** Runs a parser on an optional variable, turning its error into the one-line configuration error. */
function parseOrExplain<T>(name: string, value: string | undefined, parse: (value: string) => T): T | undefined {
  if (value === undefined) return undefined;
  try {
    return parse(value);
  } catch (error) {
    throw new Error(`invalid configuration: ${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
