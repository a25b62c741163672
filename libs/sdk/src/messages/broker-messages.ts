import { SIGNATURE_HEADERS, TRACE_CONTEXT_HEADERS } from '@nest-dtx/protocol';
import type { InboxMessage } from './dtx-inbox.js';

/*
 * A delivery of each broker client, as far as the inbox reads it. Structural types rather than
 * imports of amqplib or @nats-io/jetstream, so the SDK loads (and type-checks) without them:
 * amqplib's ConsumeMessage and JetStream's JsMsg fit (libs/sdk/src/messages/broker-messages.spec.ts).
 */

/** What amqplib hands a consumer (ConsumeMessage): the body's bytes and the AMQP headers table. */
export interface AmqpDelivery {
  content: Buffer;
  properties: { headers?: Record<string, unknown> | undefined };
  /** The routing key: on the default exchange the coordinator publishes to, the queue's name. */
  fields?: { routingKey?: string };
}

/** What JetStream hands a consumer (JsMsg): the body's bytes, the NATS headers and the subject. */
export interface JetStreamDelivery {
  data: Uint8Array;
  headers?: { get(name: string): string } | undefined;
  subject?: string;
}

/** The headers the inbox reads: the signature's, and the W3C trace context the coordinator publishes beside them. */
const NAMES = [...Object.values(SIGNATURE_HEADERS), ...TRACE_CONTEXT_HEADERS];

/** An AMQP header as text: a long string arrives as a string, a byte array as a Buffer; anything else is no signature value. */
function amqpText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

/** The body, signature and trace headers of a RabbitMQ delivery (amqplib's ConsumeMessage), for DtxInbox.receive. */
export function amqpInboxMessage(delivery: AmqpDelivery): InboxMessage {
  const table = delivery.properties.headers ?? {};
  const byLowerName = new Map(Object.entries(table).map(([name, value]) => [name.toLowerCase(), value]));
  return {
    body: delivery.content,
    headers: Object.fromEntries(NAMES.map((name) => [name, amqpText(byLowerName.get(name))])),
    source: { system: 'rabbitmq', destination: delivery.fields?.routingKey || undefined },
  };
}

/** The body, signature and trace headers of a NATS JetStream delivery (JsMsg), for DtxInbox.receive. */
export function natsInboxMessage(delivery: JetStreamDelivery): InboxMessage {
  // The bytes as they arrived, without a copy: the signature covers exactly them.
  const body = Buffer.from(delivery.data.buffer, delivery.data.byteOffset, delivery.data.byteLength);
  // MsgHdrs.get answers '' for a header that is not there.
  return {
    body,
    headers: Object.fromEntries(NAMES.map((name) => [name, delivery.headers?.get(name) || undefined])),
    source: { system: 'nats', destination: delivery.subject || undefined },
  };
}
