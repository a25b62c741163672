import { plainToInstance, Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';

const toInt = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value);

/** Environment of the event counter (apps/event-counter), validated at start-up. */
export class CounterEnv {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT: number = 4006;

  @IsOptional() @IsString()
  HOST: string = '127.0.0.1';

  /** Its own Postgres: the counts and the barrier table (created at start-up when missing). */
  @IsString() @Matches(/^postgres(ql)?:\/\//, { message: 'DATABASE_URL must be set to a postgres:// URL' })
  DATABASE_URL: string = '';

  /** Where it registers its two publish targets. */
  @IsOptional() @IsString() @Matches(/^https?:\/\//)
  COORDINATOR_URL: string = 'http://127.0.0.1:7070';

  /** Key with the participant role, when the coordinator has API_KEYS. */
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9._~+/=-]{16,256}$/, { message: 'COORDINATOR_API_KEY must be 16 to 256 token characters' })
  COORDINATOR_API_KEY?: string = undefined;

  /** The coordinator's RabbitMQ (the broker of its RABBITMQ_URL). */
  @IsOptional() @IsString() @Matches(/^amqps?:\/\//)
  RABBITMQ_URL: string = 'amqp://guest:guest@127.0.0.1:5672';

  /** The coordinator's NATS with JetStream (the server of its NATS_URL). */
  @IsOptional() @IsString() @Matches(/^(nats|tls):\/\//)
  NATS_URL: string = 'nats://127.0.0.1:4222';

  /** Messages taken per batch: the RabbitMQ prefetch and the JetStream fetch size. A batch is acknowledged once all of it is processed. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1000)
  BATCH_SIZE: number = 10;

  /** A pause before each message, to make a batch take a while (the outbox demo kills the counter halfway through one). 0 in production. */
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  EVENT_DELAY_MS: number = 0;

  /**
   * How long JetStream waits for an acknowledgement before it redelivers (the durable consumer's
   * ack_wait). Must exceed a batch's processing time, or a slow batch is redelivered while running.
   */
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @Max(3_600_000)
  NATS_ACK_WAIT_MS: number = 10_000;
}

export function loadCounterEnv(source: Record<string, string | undefined> = process.env): CounterEnv {
  const known = Object.keys(new CounterEnv());
  const relevant = Object.fromEntries(Object.entries(source).filter(([k, v]) => known.includes(k) && v !== undefined && v !== ''));
  const env = plainToInstance(CounterEnv, relevant);
  const errors = validateSync(env);
  if (errors.length > 0) {
    throw new Error(`invalid configuration: ${errors.map((e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`).join('; ')}`);
  }
  return env;
}
