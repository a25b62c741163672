import type { INestApplication } from '@nestjs/common';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { BRANCH_MESSAGE_PATTERN, redisBranchPattern, redisTransportOptions } from '@nest-dtx/protocol';
import type { RegisterParticipantRequest } from '../client/transaction-client.js';
import type { ParticipantModuleOptions } from './participant.options.js';

/** The message pattern a participant answers on its microservice transport (given apart, as forRootAsync knows them before its options). */
export function branchPatternFor(transport: 'tcp' | 'redis', name: string): string | Record<string, string> {
  return transport === 'redis' ? redisBranchPattern(name) : BRANCH_MESSAGE_PATTERN;
}

/** How the participant describes its address to the coordinator (PROTOCOL.md 4). */
export function registrationAddress(options: ParticipantModuleOptions): Pick<RegisterParticipantRequest, 'transport' | 'endpoint' | 'host' | 'port'> {
  const transport = options.transport ?? { kind: 'http' };
  switch (transport.kind) {
    case 'http':
      if (!options.publicUrl) throw new Error(`participant ${options.name}: the http transport needs publicUrl`);
      return { transport: 'http', endpoint: `${options.publicUrl.replace(/\/+$/, '')}/${options.path ?? 'tx'}` };
    case 'tcp':
      return { transport: 'tcp', host: transport.host, port: transport.port };
    case 'redis':
      return { transport: 'redis' };
  }
}

/**
 * Connects the microservice transport the options ask for (TCP or Redis) to a NestJS app and
 * starts it. Call after NestFactory.create and before app.listen; nothing to do for HTTP.
 */
export async function connectParticipantTransport(app: INestApplication, options: ParticipantModuleOptions): Promise<void> {
  const transport = options.transport;
  if (!transport || transport.kind === 'http') return;
  if (transport.kind === 'tcp') {
    app.connectMicroservice<MicroserviceOptions>({ transport: Transport.TCP, options: { host: transport.host, port: transport.port } });
  } else {
    app.connectMicroservice<MicroserviceOptions>({ transport: Transport.REDIS, options: redisTransportOptions(transport.url) });
  }
  await app.startAllMicroservices();
}
