import { BRANCH_MESSAGE_PATTERN, natsBranchSubject, redisBranchPattern } from '@nest-dtx/protocol';
import type { RegisterParticipantRequest } from '../client/transaction-client.js';
import type { ParticipantModuleOptions } from './participant.options.js';

/**
 * The message pattern a participant answers on its microservice transport (PROTOCOL.md 5.2):
 * the plain `tx.branch` on TCP and on RabbitMQ (where the participant's own queue keeps its
 * calls apart), qualified with its name on Redis (`{ cmd, participant }`) and on NATS (the
 * subject `tx.branch.<name>`), where every participant shares the broker.
 */
export function branchPatternFor(transport: 'tcp' | 'redis' | 'rabbitmq' | 'nats', name: string): string | Record<string, string> {
  switch (transport) {
    case 'redis':
      return redisBranchPattern(name);
    case 'nats':
      return natsBranchSubject(name);
    case 'tcp':
    case 'rabbitmq':
      return BRANCH_MESSAGE_PATTERN;
  }
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
    case 'rabbitmq':
    case 'nats':
      // No address: the coordinator uses its own broker connection.
      return { transport: transport.kind };
  }
}
