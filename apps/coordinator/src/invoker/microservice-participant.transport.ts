import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import {
  BRANCH_MESSAGE_PATTERN,
  redisBranchPattern,
  redisTransportOptions,
  type CallOutcome,
  type PhaseCallBody,
  type TraceContextHeaders,
} from '@nest-dtx/protocol';
import type { EgressPolicy } from '../participants/egress-policy.js';
import type { ParticipantRecord } from '../store/records.js';
import { resolveChecked } from './checked-lookup.js';
import { describeError, sendForReply, signedMessage } from './microservice-reply.js';

/** How long a TCP participant's checked address is used before its name is resolved (and checked) again. */
export const TCP_RESOLVE_EVERY_MS = 30_000;

/** A client with the address it connects to, once resolved and checked; redis clients have none. */
interface CachedClient {
  client: ClientProxy;
  address: string | null;
  checkedAt: number;
}

/**
 * PROTOCOL.md 5.2 over NestJS microservices (TCP, Redis): message pattern `tx.branch`, replies
 * `{ outcome: 'ok' | 'failed' | 'ongoing' }` (3.6). An error, an unexpected reply or no reply in time is transient.
 * One ClientProxy per participant address, reused across calls.
 */
export class MicroserviceParticipantTransport {
  private readonly clients = new Map<string, CachedClient>();
  /** Resolutions under way, so calls that arrive together share one (and one client). */
  private readonly resolving = new Map<string, Promise<ClientProxy | null>>();

  /**
   * A TCP participant's host is resolved here and every address checked against the egress
   * policy; the client connects to the address checked, not to the name (which could resolve
   * elsewhere the second time).
   */
  constructor(
    private readonly redisUrl: string | undefined,
    private readonly policy: EgressPolicy,
  ) {}

  /**
   * The data is the 5.1 body plus `headers` with the three signature values, signed over the
   * body as JSON.stringify writes it (PROTOCOL.md 5.5; docs/security.md "Signed calls"), and the
   * call's trace context beside them.
   */
  async call(participant: ParticipantRecord, body: PhaseCallBody, timeoutMs: number, keys: readonly Buffer[], trace?: TraceContextHeaders): Promise<CallOutcome> {
    let client: ClientProxy | null;
    try {
      client = await this.clientFor(participant);
    } catch (error) {
      return { kind: 'transient', error: describeError(error) };
    }
    if (!client) return { kind: 'transient', error: `no client for ${participant.transport} participant ${participant.name}` };
    const pattern = participant.transport === 'redis' ? redisBranchPattern(participant.name) : BRANCH_MESSAGE_PATTERN;
    return sendForReply(client, pattern, signedMessage(body, keys, trace), timeoutMs);
  }

  /** Drops the cached client of a participant whose registration changed. */
  forget(name: string): void {
    for (const [key, cached] of this.clients) {
      if (key.startsWith(`${name}|`)) {
        void cached.client.close();
        this.clients.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map(async (c) => { await c.client.close(); }));
    this.clients.clear();
  }

  private clientFor(participant: ParticipantRecord): Promise<ClientProxy | null> {
    const key = `${participant.name}|${participant.transport}|${participant.host ?? ''}|${participant.port ?? ''}`;
    const cached = this.clients.get(key);
    if (cached && (cached.address === null || performance.now() - cached.checkedAt < TCP_RESOLVE_EVERY_MS)) return Promise.resolve(cached.client);
    let pending = this.resolving.get(key);
    if (!pending) {
      pending = this.connectChecked(key, participant).finally(() => this.resolving.delete(key));
      this.resolving.set(key, pending);
    }
    return pending;
  }

  /** A client for the participant's current checked address: the cached one while the address is unchanged. */
  private async connectChecked(key: string, participant: ParticipantRecord): Promise<ClientProxy | null> {
    if (participant.transport === 'redis' && this.redisUrl) {
      return this.replace(key, participant.name, {
        client: ClientProxyFactory.create({ transport: Transport.REDIS, options: redisTransportOptions(this.redisUrl) }),
        address: null,
        checkedAt: performance.now(),
      });
    }
    if (participant.transport !== 'tcp' || !participant.host || !participant.port) return null;
    const [first] = await resolveChecked(this.policy, participant.host);
    const cached = this.clients.get(key);
    if (cached && cached.address === first.address) {
      cached.checkedAt = performance.now();
      return cached.client;
    }
    return this.replace(key, participant.name, {
      client: ClientProxyFactory.create({ transport: Transport.TCP, options: { host: first.address, port: participant.port } }),
      address: first.address,
      checkedAt: performance.now(),
    });
  }

  private replace(key: string, name: string, entry: CachedClient): ClientProxy {
    this.forget(name);
    this.clients.set(key, entry);
    return entry.client;
  }
}
