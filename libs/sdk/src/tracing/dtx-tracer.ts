import { trace, type Tracer } from '@opentelemetry/api';

/** The instrumentation scope of every span the SDK makes. */
export const SDK_TRACER_NAME = '@nest-dtx/sdk';

/**
 * The SDK's tracer. Asked for at each span rather than kept: until the application registers its
 * OpenTelemetry SDK the API hands out a proxy, and a tracer kept from one registered provider
 * would outlive it (an app, or a test, that registers another). Without an SDK this is the
 * API's no-op: a lookup and a small proxy object, and spans that record nothing.
 */
export function dtxTracer(): Tracer {
  return trace.getTracer(SDK_TRACER_NAME);
}

/**
 * The attribute names the SDK's spans carry. The `dtx.*` ones are the SDK's own; the others are
 * OpenTelemetry semantic conventions, written out rather than imported: the SDK depends on
 * @opentelemetry/api only, and the messaging ones are still "incubating", which a library is
 * asked to copy, not import (tracing.spec.ts checks them against @opentelemetry/semantic-conventions).
 */
export const DtxAttr = {
  GID: 'dtx.gid',
  BRANCH_ID: 'dtx.branch_id',
  MODE: 'dtx.mode',
  ACTION: 'dtx.action',
  PHASE: 'dtx.phase',
  /** What the participant answered: ok, failed, ongoing, refused (a bad signature or a call it does not serve, nothing ran) or error (transient). */
  OUTCOME: 'dtx.outcome',
  /** How the call arrived: http, tcp, redis, rabbitmq, nats (request/reply), or inbox (a message of a publish target). */
  TRANSPORT: 'dtx.transport',
  /** A broker's redelivery the barrier recognised: the work did not run again. */
  DUPLICATE: 'dtx.duplicate',
} as const;

export const SemconvAttr = {
  ERROR_TYPE: 'error.type',
  HTTP_REQUEST_METHOD: 'http.request.method',
  HTTP_RESPONSE_STATUS_CODE: 'http.response.status_code',
  HTTP_ROUTE: 'http.route',
  URL_FULL: 'url.full',
  NETWORK_TRANSPORT: 'network.transport',
  MESSAGING_SYSTEM: 'messaging.system',
  MESSAGING_DESTINATION_NAME: 'messaging.destination.name',
  MESSAGING_CONSUMER_GROUP_NAME: 'messaging.consumer.group.name',
  MESSAGING_OPERATION_TYPE: 'messaging.operation.type',
} as const;
