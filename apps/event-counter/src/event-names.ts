/**
 * What the counter consumes and registers. The order service (apps/order, ORDER_MESSAGE) sends
 * its event to these two publish targets by these names.
 */
export const ORDER_EVENTS = {
  /** The event: the RabbitMQ queue's name and the NATS subject (a publish target's action is where it publishes). */
  event: 'order.created',
  /** The publish target on RabbitMQ (transport rabbitmq, publish: true). */
  rabbitmqTarget: 'order-events-rabbitmq',
  /** The publish target on NATS JetStream (transport nats, publish: true). */
  natsTarget: 'order-events-nats',
  /** The JetStream stream that captures the subject, and the counter's durable pull consumer on it. */
  natsStream: 'ORDER_CREATED',
  natsConsumer: 'event-counter',
} as const;

export type EventSource = 'rabbitmq' | 'nats';
export const EVENT_SOURCES: readonly EventSource[] = ['rabbitmq', 'nats'];
