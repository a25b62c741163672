import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import {
  BRANCH_MESSAGE_PATTERN,
  redisBranchPattern,
  redisTransportOptions,
  type CallOutcome,
  type PhaseCallBody,
} from '@nest-dtx/protocol';
import type { ParticipantRecord } from '../store/records.js';
import { sendForReply, signedMessage } from './microservice-reply.js';

/**
 * PROTOCOL.md 5.2 over NestJS microservices (TCP, Redis): message pattern `tx.branch`, replies
 * `{ outcome: 'ok' | 'failed' }`. An error, an unexpected reply or no reply in time is transient.
 * One ClientProxy per participant address, reused across calls.
 */
export class MicroserviceParticipantTransport {
  private readonly clients = new Map<string, ClientProxy>();

  constructor(private readonly redisUrl: string | undefined) {}

  /**
   * The data is the 5.1 body plus `headers` with the three signature values, signed over the
   * body as JSON.stringify writes it (PROTOCOL.md 5.5; README "Security").
   */
  async call(participant: ParticipantRecord, body: PhaseCallBody, timeoutMs: number, keys: readonly Buffer[]): Promise<CallOutcome> {
    const client = this.clientFor(participant);
    if (!client) return { kind: 'transient', error: `no client for ${participant.transport} participant ${participant.name}` };
    const pattern = participant.transport === 'redis' ? redisBranchPattern(participant.name) : BRANCH_MESSAGE_PATTERN;
    return sendForReply(client, pattern, signedMessage(body, keys), timeoutMs);
  }

  /** Drops the cached client of a participant whose registration changed. */
  forget(name: string): void {
    for (const [key, client] of this.clients) {
      if (key.startsWith(`${name}|`)) {
        void client.close();
        this.clients.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map(async (c) => { await c.close(); }));
    this.clients.clear();
  }

  private clientFor(participant: ParticipantRecord): ClientProxy | null {
    const key = `${participant.name}|${participant.transport}|${participant.host ?? ''}|${participant.port ?? ''}`;
    const cached = this.clients.get(key);
    if (cached) return cached;
    let client: ClientProxy;
    if (participant.transport === 'tcp' && participant.host && participant.port) {
      client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: participant.host, port: participant.port } });
    } else if (participant.transport === 'redis' && this.redisUrl) {
      client = ClientProxyFactory.create({ transport: Transport.REDIS, options: redisTransportOptions(this.redisUrl) });
    } else {
      return null;
    }
    this.forget(participant.name);
    this.clients.set(key, client);
    return client;
  }
}
