import { Controller, Get, Inject, Injectable, Module, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import type { CounterEnv } from './counter-env.js';
import { EventStore, type EventsSummary } from './event-store.js';
import { NatsEventConsumer } from './nats-consumer.js';
import { PublishTargets } from './publish-targets.js';
import { RabbitMqEventConsumer } from './rabbitmq-consumer.js';

const COUNTER_ENV = Symbol('event-counter:env');
const PG_POOL = Symbol('event-counter:pg-pool');

/** The counter's own API: how many events it counted, and how many redeliveries it recognised, per source. */
@Controller('events')
class EventsController {
  constructor(private readonly store: EventStore) {}

  @Get()
  summary(): Promise<EventsSummary> {
    return this.store.summary();
  }
}

/** Starts consuming once everything is ready (registered, schema in place), and stops cleanly. */
@Injectable()
class Consumers implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly rabbitmq: RabbitMqEventConsumer,
    private readonly nats: NatsEventConsumer,
    private readonly targets: PublishTargets,
    @Inject(PG_POOL) private readonly pool: pg.Pool,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await Promise.all([this.rabbitmq.start(), this.nats.start()]);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.rabbitmq.stop(), this.nats.stop()]);
    this.targets.stop();
    await this.pool.end();
  }
}

/**
 * The event counter (the outbox demo's consumer, not a participant: nothing calls it). It owns
 * two publish targets, registers them with the coordinator, consumes the RabbitMQ queue and the
 * JetStream stream they publish `order.created` to, and counts every event exactly once per
 * source in Postgres (DtxInbox over the pg data layer), acknowledging only what it has counted.
 */
@Module({})
export class AppModule {
  static forEnv(env: CounterEnv): DynamicModule {
    return {
      module: AppModule,
      controllers: [EventsController],
      providers: [
        { provide: COUNTER_ENV, useValue: env },
        { provide: PG_POOL, useFactory: () => new pg.Pool({ connectionString: env.DATABASE_URL, max: 10 }) },
        {
          provide: PublishTargets,
          useFactory: async () => {
            const targets = PublishTargets.fromEnv(env);
            await targets.register();
            return targets;
          },
        },
        {
          provide: EventStore,
          inject: [PG_POOL, PublishTargets],
          useFactory: async (pool: pg.Pool, targets: PublishTargets) => {
            const store = new EventStore(pool, targets);
            await store.createSchema();
            return store;
          },
        },
        { provide: RabbitMqEventConsumer, inject: [COUNTER_ENV, EventStore], useFactory: (e: CounterEnv, store: EventStore) => new RabbitMqEventConsumer(e, store) },
        { provide: NatsEventConsumer, inject: [COUNTER_ENV, EventStore], useFactory: (e: CounterEnv, store: EventStore) => new NatsEventConsumer(e, store) },
        Consumers,
      ],
    };
  }
}
