import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { participantOptions, type ServiceEnv } from '@app/demo-support';
import { DtxParticipantModule } from '@nest-dtx/sdk';
import { redisDataLayer } from '@nest-dtx/sdk/redis';
import { LoyaltyController } from './loyalty.controller.js';
import { LOYALTY_KEY_PREFIX, LOYALTY_REDIS, LoyaltyService } from './loyalty.service.js';

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(LOYALTY_REDIS) private readonly redis: Redis) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit();
  }
}

/** The Redis connection and the service's key prefix (its participant name). */
@Module({})
class RedisModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    return {
      module: RedisModule,
      providers: [
        { provide: LOYALTY_REDIS, useFactory: () => new Redis(env.DATABASE_URL, { maxRetriesPerRequest: 3 }) },
        { provide: LOYALTY_KEY_PREFIX, useValue: `${env.PARTICIPANT_NAME}:` },
        RedisCloser,
      ],
      exports: [LOYALTY_REDIS, LOYALTY_KEY_PREFIX],
    };
  }
}

/**
 * The loyalty-points service of the polyglot demo: state in Redis, the SDK's Redis barrier as
 * its data layer (barrier keys under the service's own prefix).
 */
@Module({})
export class AppModule {
  static forEnv(env: ServiceEnv): DynamicModule {
    const redis = RedisModule.forEnv(env);
    return {
      module: AppModule,
      imports: [
        redis,
        DtxParticipantModule.forRootAsync({
          imports: [redis],
          inject: [LOYALTY_REDIS, LOYALTY_KEY_PREFIX],
          useFactory: (client: Redis, prefix: string) => ({
            ...participantOptions(env),
            dataLayer: redisDataLayer(client, { keyPrefix: `${prefix}dtx:barrier:` }),
          }),
        }),
      ],
      controllers: [LoyaltyController],
      providers: [LoyaltyService],
    };
  }
}
