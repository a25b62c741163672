import { plainToInstance, Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';
import type { ParticipantTransportOptions } from '@nest-dtx/sdk';

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;

/**
 * Environment of the demo participant services (account, order, inventory;
 * docs/configuration.md "The demo services"). Each service passes its own defaults (port, participant name).
 */
export class ServiceEnv {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT: number = 4003;

  @IsOptional() @IsString()
  HOST: string = '127.0.0.1';

  /** The service's own store: Postgres for the TypeORM services, MariaDB/MySQL or Redis for the polyglot demo's. */
  @IsString() @Matches(/^(postgres(ql)?|mysql|mariadb|rediss?):\/\//, { message: 'DATABASE_URL must be set to a postgres://, mysql:// or redis:// URL' })
  DATABASE_URL: string = '';

  @IsOptional() @IsString() @Matches(/^https?:\/\//)
  COORDINATOR_URL: string = 'http://127.0.0.1:7070';

  @IsOptional() @IsString() @Matches(/^https?:\/\//)
  PUBLIC_URL?: string = undefined;

  /** Key (participant role) the service registers with, when the coordinator has API_KEYS. */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9._~+/=-]{16,256}$/, { message: 'COORDINATOR_API_KEY must be 16 to 256 token characters' })
  COORDINATOR_API_KEY?: string = undefined;

  /**
   * `whsec_…`: verifies the coordinator's calls before the first registration answer, or
   * always with REGISTER=false (validated by the SDK, which never echoes it).
   */
  @IsOptional() @IsString()
  SIGNING_SECRET?: string = undefined;

  /** `false`: do not register with the coordinator (an operator did; needs SIGNING_SECRET). */
  @IsOptional() @IsIn(['true', 'false'])
  REGISTER: 'true' | 'false' = 'true';

  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/)
  PARTICIPANT_NAME: string = 'order';

  @IsOptional() @IsIn(['http', 'tcp', 'redis', 'rabbitmq', 'nats'])
  TRANSPORT: 'http' | 'tcp' | 'redis' | 'rabbitmq' | 'nats' = 'http';

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  TCP_PORT?: number = undefined;

  @IsOptional() @IsString() @Matches(/^rediss?:\/\//)
  REDIS_URL?: string = undefined;

  /** TRANSPORT=rabbitmq: the coordinator's RabbitMQ (the same broker as its RABBITMQ_URL). */
  @IsOptional() @IsString() @Matches(/^amqps?:\/\//)
  RABBITMQ_URL?: string = undefined;

  /** TRANSPORT=nats: the coordinator's NATS (the same server as its NATS_URL). */
  @IsOptional() @IsString() @Matches(/^(nats|tls):\/\//)
  NATS_URL?: string = undefined;

  /** AT mode: how long a phase 1 waits for a row another global transaction holds (the SDK's at.lockWaitMs; default 1000). */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  AT_LOCK_WAIT_MS?: number = undefined;

  /** A fault for tests and demos: `<action>/<phase>` (HTTP), kill -9 itself after that phase ran, before answering (CrashAfterPhase). */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9_.:-]+\/[a-z]+$/)
  CRASH_AFTER_PHASE?: string = undefined;
}

export function loadServiceEnv(defaults: Partial<ServiceEnv>, source: Record<string, string | undefined> = process.env): ServiceEnv {
  const known = Object.keys(new ServiceEnv());
  const relevant = Object.fromEntries(Object.entries(source).filter(([k, v]) => known.includes(k) && v !== undefined && v !== ''));
  const env = plainToInstance(ServiceEnv, { ...defaults, ...relevant });
  const errors = validateSync(env);
  if (errors.length > 0) {
    throw new Error(`invalid configuration: ${errors.map((e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`).join('; ')}`);
  }
  return env;
}

export function participantTransport(env: ServiceEnv): ParticipantTransportOptions {
  switch (env.TRANSPORT) {
    case 'http':
      return { kind: 'http' };
    case 'tcp':
      if (!env.TCP_PORT) throw new Error('invalid configuration: TRANSPORT=tcp needs TCP_PORT');
      return { kind: 'tcp', host: env.HOST, port: env.TCP_PORT };
    case 'redis':
      if (!env.REDIS_URL) throw new Error('invalid configuration: TRANSPORT=redis needs REDIS_URL');
      return { kind: 'redis', url: env.REDIS_URL };
    case 'rabbitmq':
      if (!env.RABBITMQ_URL) throw new Error('invalid configuration: TRANSPORT=rabbitmq needs RABBITMQ_URL');
      return { kind: 'rabbitmq', url: env.RABBITMQ_URL };
    case 'nats':
      if (!env.NATS_URL) throw new Error('invalid configuration: TRANSPORT=nats needs NATS_URL');
      return { kind: 'nats', url: env.NATS_URL };
  }
}
