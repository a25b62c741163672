import type { DynamicModule, Type } from '@nestjs/common';
import type { MigrationInterface } from 'typeorm';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DtxParticipantModule, dtxMigrations, type AtModeOptions, type ParticipantModuleOptions } from '@nest-dtx/sdk';
import { participantTransport, type ServiceEnv } from './service-env.js';

/** The two modules every demo participant imports: its own database (with the barrier) and the SDK. */
export function participantInfrastructure(
  env: ServiceEnv,
  entities: Type[],
  migrations: (new () => MigrationInterface)[],
  /** AT mode, for a service with AtAction methods: the tables they write. */
  at?: AtModeOptions,
): DynamicModule[] {
  return [
    TypeOrmModule.forRoot({
      type: 'postgres',
      url: env.DATABASE_URL,
      entities,
      migrations: [...dtxMigrations, ...migrations],
      migrationsRun: true,
      synchronize: false,
      extra: { max: 20 },
      retryAttempts: 0,
    }),
    DtxParticipantModule.forRoot({ ...participantOptions(env), ...(at ? { at } : {}) }),
  ];
}

/** The SDK's options of a demo participant, from its environment (the data layer is the service's own business). */
export function participantOptions(env: ServiceEnv): ParticipantModuleOptions {
  return {
    name: env.PARTICIPANT_NAME,
    coordinatorUrl: env.COORDINATOR_URL,
    publicUrl: env.PUBLIC_URL ?? `http://${env.HOST}:${env.PORT}`,
    transport: participantTransport(env),
    apiKey: env.COORDINATOR_API_KEY,
    register: env.REGISTER === 'true',
    signingSecret: env.SIGNING_SECRET,
  };
}
