import type { INestApplication } from '@nestjs/common';
import type { MessageHandler, ServerNats, ServerRedis, ServerRMQ, ServerTCP } from '@nestjs/microservices';
import { natsBranchSubject, natsConnectionOptions, natsParticipantQueueGroup, rabbitmqParticipantQueue, redisTransportOptions } from '@nest-dtx/protocol';
import { CallSources, type CallSource } from '../tracing/handle-span.js';
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
 * Connects the microservice transport the options ask for (TCP, Redis, RabbitMQ or NATS) to a
 * NestJS app and starts it; nothing to do for HTTP. Call after NestFactory.create and before
 * app.listen. `options` default to the ones DtxParticipantModule runs with
 * (`app.get(PARTICIPANT_OPTIONS)`, so what a forRootAsync factory returned), which is what they
 * should be: pass them only to connect another transport than the module's.
 *
 * The server is made here (ServerTCP, ServerRedis, ServerRMQ or ServerNats) and the
 * participant's handler added to it under the pattern of these options, so nothing about the
 * transport is fixed when the module is defined. @nestjs/microservices is an optional peer of
 * the SDK: it is loaded here, and only for a microservice transport (RabbitMQ also needs
 * amqplib and amqp-connection-manager, NATS @nats-io/transport-node).
 */
export async function connectParticipantTransport(app: INestApplication, options?: ParticipantModuleOptions): Promise<void> {
  const resolved = options ?? moduleOptions(app);
  const transport = resolved.transport;
  if (!transport || transport.kind === 'http') return;
  const microservices = await import('@nestjs/microservices');
  let server: ServerTCP | ServerRedis | ServerRMQ | ServerNats;
  // The span kind and attributes every call of this transport shares (HandleSpan).
  let source: CallSource;
  switch (transport.kind) {
    case 'tcp':
      server = new microservices.ServerTCP({ host: transport.host, port: transport.port });
      source = CallSources.tcp();
      break;
    case 'redis':
      server = new microservices.ServerRedis(redisTransportOptions(transport.url));
      source = CallSources.redis();
      break;
    case 'rabbitmq':
      server = new microservices.ServerRMQ({
        urls: [transport.url],
        // Its own queue: the coordinator sends this participant's calls there and nowhere else;
        // several instances consume it and share the calls. Durable, so it outlives a broker
        // restart; deleted once its last consumer is gone (a call nobody consumes expires anyway).
        queue: rabbitmqParticipantQueue(resolved.name),
        queueOptions: { durable: true, autoDelete: true },
      });
      source = CallSources.rabbitmq(rabbitmqParticipantQueue(resolved.name));
      break;
    case 'nats':
      // One queue group: each call goes to one instance of the participant, not to all.
      server = new microservices.ServerNats({ ...natsConnectionOptions(transport.url), queue: natsParticipantQueueGroup(resolved.name), maxReconnectAttempts: -1 });
      source = CallSources.nats(natsBranchSubject(resolved.name), natsParticipantQueueGroup(resolved.name));
      break;
  }
  const handler = app.get(ParticipantMessageHandler, { strict: false });
  const handle: MessageHandler = (data: unknown) => handler.handle(data, source);
  server.addHandler(branchPatternFor(transport.kind, resolved.name), handle);
  app.connectMicroservice({ strategy: server });
  await app.startAllMicroservices();
}
