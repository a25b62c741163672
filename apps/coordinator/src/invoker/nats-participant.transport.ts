import { headers as natsHeaders, RequestError, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { NatsRecordBuilder } from '@nestjs/microservices';
import { natsBranchSubject, natsConnectionOptions, type CallOutcome, type PhaseCallBody, type TraceContextHeaders } from '@nest-dtx/protocol';
import { standaloneOutage } from '../logging/dependency-outages.js';
import type { OutageEpisode } from '../logging/outage-episode.js';
import type { ParticipantRecord } from '../store/records.js';
import { OutageAwareNatsClient } from './broker-clients.js';
import { describeError, sendForReply, signedMessage } from './microservice-reply.js';
import { publishedCall, refusedByPublishTarget } from './publish-call.js';

/** Whether a JetStream publish failed because nothing takes the subject: no stream (or no JetStream) answered it. */
function noResponders(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof RequestError && cause.isNoResponders()) return true;
    if (cause.name === 'NoRespondersError') return true;
  }
  return false;
}

/**
 * The nats transport, over the coordinator's NATS_URL (docs/transports.md "RabbitMQ and NATS"), on one
 * connection (NestJS ClientNats, which reconnects by itself after the server restarts):
 * - request/reply participants: `tx.branch.<name>` requests, the pattern qualified with the
 *   participant's name as on Redis; the participant's instances answer in one queue group.
 *   Replies as PROTOCOL.md 5.2.
 * - publish targets: a JetStream publish of the call's 5.1 body to the subject named like the
 *   action, with `Nats-Msg-Id` = webhook-id (the stream drops a duplicate inside its
 *   duplicate window) and the signature headers; delivered once the PubAck arrives. Streams
 *   are never created here: the consumer owns them.
 */
export class NatsParticipantTransport {
  private client: OutageAwareNatsClient | null = null;
  /** The JetStream client of the connection it was made on (a reconnect keeps the connection object). */
  private jetStream: { connection: NatsConnection; client: JetStreamClient } | null = null;

  constructor(
    private readonly url: string | undefined,
    private readonly callTimeoutMs: number,
    /** NATS's outage episode: a server restart is one warn line and one when reconnected. */
    private readonly outage: OutageEpisode = standaloneOutage('nats', 'NATS'),
  ) {}

  /** `trace`: the call's W3C trace context, as NATS headers (and, request/reply, in the data's `headers` too). */
  async call(participant: ParticipantRecord, body: PhaseCallBody, timeoutMs: number, keys: readonly Buffer[], trace?: TraceContextHeaders): Promise<CallOutcome> {
    if (!this.url) return { kind: 'transient', error: `participant ${participant.name} uses transport nats, and this coordinator instance has no NATS_URL` };
    const client = this.clientFor(this.url);
    if (!participant.publish) {
      const data = signedMessage(body, keys, trace);
      return sendForReply(client, natsBranchSubject(participant.name), trace ? new NatsRecordBuilder(data).setHeaders(headersOf(trace)).build() : data, timeoutMs);
    }
    const refused = refusedByPublishTarget(participant, body);
    if (refused) return refused;
    return this.publish(client, body.action, body, keys, timeoutMs, trace);
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.jetStream = null;
    await client?.close();
  }

  private async publish(client: OutageAwareNatsClient, subject: string, body: PhaseCallBody, keys: readonly Buffer[], timeoutMs: number, trace?: TraceContextHeaders): Promise<CallOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = performance.now() + timeoutMs;
    const expired = new Promise<CallOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'transient', error: `no PubAck from JetStream for subject ${subject} within ${timeoutMs} ms` }), timeoutMs);
    });
    const attempt = async (): Promise<CallOutcome> => {
      const js = await this.jetStreamOf(client);
      const left = deadline - performance.now();
      if (left <= 0) return { kind: 'transient', error: `not published: its ${timeoutMs} ms ran out before NATS was connected` };
      // Signed as it leaves, over the exact bytes published.
      const call = publishedCall(body, keys, trace);
      const headers = headersOf(call.headers);
      const ack = await js.publish(subject, call.content, { msgID: call.id, headers, timeout: left });
      return { kind: 'ok', result: { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate } };
    };
    try {
      return await Promise.race([
        attempt().catch((error: unknown): CallOutcome => {
          if (noResponders(error)) {
            return { kind: 'transient', error: `no JetStream stream takes subject ${subject} (no responders): the consumer creates the stream` };
          }
          if (error instanceof JetStreamApiError) return { kind: 'transient', error: `JetStream refused the message to subject ${subject}: ${error.message}` };
          if (error instanceof Error && error.name === 'TimeoutError') return { kind: 'transient', error: `no PubAck from JetStream for subject ${subject} within ${timeoutMs} ms` };
          return { kind: 'transient', error: `cannot publish to NATS subject ${subject}: ${describeError(error)}` };
        }),
        expired,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async jetStreamOf(client: OutageAwareNatsClient): Promise<JetStreamClient> {
    // ClientNats.connect() resolves with the NatsConnection; while it reconnects it rejects.
    const connection = (await client.connect()) as NatsConnection;
    if (this.jetStream?.connection !== connection) this.jetStream = { connection, client: jetstream(connection) };
    return this.jetStream.client;
  }

  private clientFor(url: string): OutageAwareNatsClient {
    this.client ??= new OutageAwareNatsClient(
      {
        ...natsConnectionOptions(url),
        name: 'nest-dtx coordinator',
        // Reconnect for as long as it takes (a broker restart); calls meanwhile are transient.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1_000,
        timeout: this.callTimeoutMs,
      },
      this.outage,
    );
    return this.client;
  }
}

/** Values as NATS message headers. */
function headersOf(values: Readonly<Record<string, string | undefined>>): MsgHdrs {
  const headers = natsHeaders();
  for (const [name, value] of Object.entries(values)) if (value !== undefined) headers.set(name, value);
  return headers;
}
