import type { INestApplication } from '@nestjs/common';
import type { MessageHandler, ServerRedis, ServerTCP } from '@nestjs/microservices';
import { redisTransportOptions } from '@nest-dtx/protocol';
import { branchPatternFor } from './participant-address.js';
import { ParticipantMessageHandler } from './participant-message.handler.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

export { branchPatternFor, registrationAddress } from './participant-address.js';

function moduleOptions(app: INestApplication): ParticipantModuleOptions {
  try {
    return app.get<ParticipantModuleOptions>(PARTICIPANT_OPTIONS, { strict: false });
  } catch {
    throw new Error('connectParticipantTransport: the app has no DtxParticipantModule (import DtxParticipantModule.forRoot or forRootAsync, or pass the options)');
  }
}

/**
 * Connects the microservice transport the options ask for (TCP or Redis) to a NestJS app and
 * starts it; nothing to do for HTTP. Call after NestFactory.create and before app.listen.
 * `options` default to the ones DtxParticipantModule runs with (`app.get(PARTICIPANT_OPTIONS)`,
 * so what a forRootAsync factory returned), which is what they should be: pass them only to
 * connect another transport than the module's.
 *
 * The server is made here (ServerTCP or ServerRedis) and the participant's handler added to it
 * under the pattern of these options, so nothing about the transport is fixed when the module
 * is defined. @nestjs/microservices is an optional peer of the SDK: it is loaded here, and only
 * for a TCP or Redis transport.
 */
export async function connectParticipantTransport(app: INestApplication, options?: ParticipantModuleOptions): Promise<void> {
  const resolved = options ?? moduleOptions(app);
  const transport = resolved.transport;
  if (!transport || transport.kind === 'http') return;
  const microservices = await import('@nestjs/microservices');
  const server: ServerTCP | ServerRedis =
    transport.kind === 'tcp'
      ? new microservices.ServerTCP({ host: transport.host, port: transport.port })
      : new microservices.ServerRedis(redisTransportOptions(transport.url));
  const handler = app.get(ParticipantMessageHandler, { strict: false });
  const handle: MessageHandler = (data: unknown) => handler.handle(data);
  server.addHandler(branchPatternFor(transport.kind, resolved.name), handle);
  app.connectMicroservice({ strategy: server });
  await app.startAllMicroservices();
}
