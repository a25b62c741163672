import { BRANCH_MESSAGE_PATTERN, redisBranchPattern } from '@nest-dtx/protocol';
import type { RegisterParticipantRequest } from '../client/transaction-client.js';
import type { ParticipantModuleOptions } from './participant.options.js';

/** The message pattern a participant answers on its microservice transport: the plain `tx.branch` on TCP, qualified with its name on Redis (PROTOCOL.md 5.2). */
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
