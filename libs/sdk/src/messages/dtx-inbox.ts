import { SpanKind } from '@opentelemetry/api';
import {
  MSG_CHECK_BRANCH_ID,
  parseSigningSecret,
  SIGNATURE_HEADERS,
  SignatureError,
  verifyCall,
  type Json,
  type JsonObject,
  type PhaseCallBody,
} from '@nest-dtx/protocol';
import { BusinessFailure } from '../data-layers/core/business-failure.js';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';
import { isOngoingAnswer } from '../data-layers/core/ongoing-answer.js';
import { branchContext, type BranchContext } from '../participant/participant.explorer.js';
import { isPhaseCall, signedIdNamesBody } from '../participant/phase-call.js';
import { DtxAttr, SemconvAttr } from '../tracing/dtx-tracer.js';
import { HandleSpan, traceHeadersOf, type CallSource } from '../tracing/handle-span.js';

/**
 * A message as a broker handed it over: the body's exact bytes, and its headers by name (the
 * three signature headers; `traceparent` and `tracestate` too, when the message has them).
 */
export interface InboxMessage {
  body: string | Buffer;
  headers: Readonly<Record<string, string | undefined>>;
  /** Where it was consumed from, for the span of its processing (amqpInboxMessage and natsInboxMessage fill it in). */
  source?: InboxSource;
}

/** The broker and the queue or subject a message was consumed from. */
export interface InboxSource {
  system: 'rabbitmq' | 'nats';
  /** The RabbitMQ queue (the routing key, on the default exchange the coordinator publishes to) or the NATS subject. */
  destination?: string;
}

/** What every inbox span shares; the broker's attributes are added per message, and only to a span that records. */
const INBOX_CALLS: CallSource = { kind: SpanKind.CONSUMER, attributes: { [DtxAttr.TRANSPORT]: 'inbox', [SemconvAttr.MESSAGING_OPERATION_TYPE]: 'process' } };

/** Why the inbox refused a message. None of them gets better by redelivering the message. */
export const DtxInboxErrorCode = {
  /** Standard Webhooks headers missing, malformed, too old, not matching the secret (PROTOCOL.md 5.5). */
  ...SignatureError,
  /** The body is not JSON. */
  INVALID_JSON: 'INVALID_JSON',
  /** Signed, but no `execute` of a msg branch (PROTOCOL.md 5.1), or its `webhook-id` names another one. */
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  /** The barrier refused the branch: it was marked rolled back (which nothing does to a msg branch but a forged id). */
  BARRIER_REFUSED: 'BARRIER_REFUSED',
} as const;
export type DtxInboxErrorCode = (typeof DtxInboxErrorCode)[keyof typeof DtxInboxErrorCode];

/**
 * A message the inbox refused before (or instead of) running anything. The consumer should not
 * have it redelivered (ack and drop it, or dead-letter it): it will be refused again. Any other
 * error out of `receive` (the database went away, the work threw) is transient: have it
 * redelivered, and the barrier keeps the redelivery from taking effect twice.
 */
export class DtxInboxError extends Error {
  constructor(
    readonly code: DtxInboxErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DtxInboxError';
  }
}

export interface DtxInboxOptions {
  /**
   * What the messages are signed with: the publish target participant's `signingSecret`
   * (`whsec_…`, given by the coordinator when that participant registered), or a function that
   * gives the keys in force at each message (during a rotation, both).
   */
  signingSecret: string | (() => readonly Buffer[]);
  /**
   * How far a message's `webhook-timestamp` (when the coordinator signed and published it) may
   * be from this clock. Default 7 days: a queued message may wait for its consumer far longer
   * than a call waits for its answer (the 5 minutes of PROTOCOL.md 5.5), and replays are harmless
   * while the barrier remembers the branch. Keep it below the data layer's barrier retention
   * (7 days by default), past which a replay would run again.
   */
  toleranceSeconds?: number;
}

export const INBOX_DEFAULT_TOLERANCE_SECONDS = 7 * 24 * 60 * 60;

/** The business work of a delivered message: the branch's payload, and the local transaction to write through (`context.tx`). */
export type InboxWork<Tx> = (payload: JsonObject, context: BranchContext<Tx>) => Promise<Json | void>;

/** Why an inbox's work may not answer ongoing(). */
const ONGOING_REFUSED = 'DtxInbox: the work of a delivered message answers for good (a result, or a BusinessFailure): it cannot answer ongoing()';

export interface InboxReceipt {
  gid: string;
  branchId: string;
  /** A redelivery of a message that already took effect: the work did not run, `result` is what it returned the first time. */
  duplicate: boolean;
  result: Json;
}

/** Headers with lower-case names, as Standard Webhooks names them (brokers keep whatever case they were given). */
function lowerCased(headers: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/**
 * The consumer side of a msg branch published to a broker (RabbitMQ, NATS JetStream): the
 * coordinator publishes the branch's `execute` as the PROTOCOL.md 5.1 JSON body with the three
 * Standard Webhooks headers (`webhook-id` `{gid}/{branchId}/execute`, signed over the exact body
 * bytes with the publish target participant's secret). A broker delivers at least once, so
 * `receive` runs the work under the barrier, like a `@MsgAction` method: in the data layer's
 * local transaction with the branch's phase-1 barrier row, so a redelivered message is a
 * duplicate that changes nothing. Nothing of a message is used before its signature verified.
 *
 * Each message has its span (`dtx.handle {action}/execute`, kind CONSUMER), a child of the
 * coordinator's publish through the message's `traceparent` / `tracestate` headers; the work and
 * the barrier run with it active.
 *
 * ```ts
 * const inbox = new DtxInbox(pgDataLayer(pool), { signingSecret: process.env.DTX_SIGNING_SECRET! });
 * await channel.consume('credits', async (delivery) => {
 *   if (!delivery) return;
 *   try {
 *     await inbox.receive(amqpInboxMessage(delivery), (payload, { tx }) => credit(tx, payload));
 *     channel.ack(delivery);
 *   } catch (error) {
 *     channel.nack(delivery, false, !(error instanceof DtxInboxError)); // requeue only what may succeed later
 *   }
 * });
 * ```
 */
export class DtxInbox<Tx = unknown> {
  private readonly keys: () => readonly Buffer[];
  private readonly toleranceSeconds: number;

  constructor(
    private readonly dataLayer: DtxDataLayer<Tx>,
    options: DtxInboxOptions,
  ) {
    const secret = options.signingSecret;
    if (typeof secret === 'string') {
      // Parsed now: a wrong secret fails where the inbox is made, not at the first message.
      const key = parseSigningSecret(secret);
      this.keys = () => [key];
    } else {
      this.keys = secret;
    }
    this.toleranceSeconds = options.toleranceSeconds ?? INBOX_DEFAULT_TOLERANCE_SECONDS;
    if (!Number.isSafeInteger(this.toleranceSeconds) || this.toleranceSeconds <= 0) {
      throw new RangeError(`DtxInbox: toleranceSeconds must be a positive whole number, not ${String(options.toleranceSeconds)}`);
    }
  }

  /**
   * Verifies the message, then runs `work` once per branch: the first delivery runs it (and
   * commits its writes with the barrier row), every later one is a duplicate. Throws a
   * DtxInboxError for a message to drop (nothing ran), the work's own BusinessFailure (nothing
   * was written), or any other error (transient, nothing was written).
   */
  async receive(message: InboxMessage, work: InboxWork<Tx>): Promise<InboxReceipt> {
    const headers = lowerCased(message.headers);
    const span = HandleSpan.start(INBOX_CALLS, traceHeadersOf(headers));
    if (message.source) {
      span.set(SemconvAttr.MESSAGING_SYSTEM, message.source.system);
      if (message.source.destination) span.set(SemconvAttr.MESSAGING_DESTINATION_NAME, message.source.destination);
    }
    try {
      const receipt = await this.receiveVerified(this.verified(message.body, headers), work, span);
      span.set(DtxAttr.DUPLICATE, receipt.duplicate);
      span.end({ outcome: 'ok' });
      return receipt;
    } catch (error) {
      if (error instanceof DtxInboxError) {
        // A barrier's refusal is the anti-hanging 409 of a call; any other, a message refused before anything ran.
        span.end({ outcome: error.code === DtxInboxErrorCode.BARRIER_REFUSED ? 'failed' : 'refused', errorType: error.code });
      } else if (error instanceof BusinessFailure) {
        span.end({ outcome: 'failed', errorType: 'BUSINESS_FAILURE' });
      } else {
        span.end({ outcome: 'error', errorType: error instanceof Error ? error.name : 'Error' }, error);
      }
      throw error;
    }
  }

  private async receiveVerified(call: PhaseCallBody & { payload: JsonObject }, work: InboxWork<Tx>, span: HandleSpan): Promise<InboxReceipt> {
    span.identify(call);
    const thrown: { failure?: BusinessFailure } = {};
    const outcome = await span.run(() =>
      this.dataLayer.runPhase(call, async (tx) => {
        let answer: unknown;
        try {
          answer = await work(call.payload, branchContext(call, tx));
        } catch (error) {
          if (error instanceof BusinessFailure) thrown.failure = error;
          throw error;
        }
        // A delivered message is acknowledged or not: there is no one to ask again later. Thrown
        // here, inside the local transaction, so that nothing the work wrote commits.
        if (isOngoingAnswer(answer)) throw new TypeError(ONGOING_REFUSED);
        return answer as Json | void;
      }),
    );
    if (outcome.kind === 'failed') {
      const refused = thrown.failure;
      if (refused && outcome.message === refused.message && outcome.details === refused.details) throw refused;
      throw new DtxInboxError(DtxInboxErrorCode.BARRIER_REFUSED, outcome.message);
    }
    if (outcome.kind === 'ongoing') throw new TypeError(ONGOING_REFUSED);
    return { gid: call.gid, branchId: call.branchId, duplicate: outcome.duplicate, result: outcome.result };
  }

  /** The message's call, once its signature, its shape and its id are checked; throws DtxInboxError otherwise. */
  private verified(content: string | Buffer, headers: Record<string, string | undefined>): PhaseCallBody & { payload: JsonObject } {
    const verdict = verifyCall(this.keys(), headers, content, Math.floor(Date.now() / 1000), this.toleranceSeconds);
    if (!verdict.ok) throw new DtxInboxError(verdict.code, verdict.reason);
    let body: unknown;
    try {
      body = JSON.parse(typeof content === 'string' ? content : content.toString('utf8'));
    } catch {
      throw new DtxInboxError(DtxInboxErrorCode.INVALID_JSON, 'the message body is not valid JSON');
    }
    if (!isPhaseCall(body) || body.mode !== 'msg' || body.phase !== 'execute' || body.branchId === MSG_CHECK_BRANCH_ID) {
      throw new DtxInboxError(DtxInboxErrorCode.INVALID_MESSAGE, 'the message is not the execute of a msg branch (PROTOCOL.md 5.1)');
    }
    if (!signedIdNamesBody(headers[SIGNATURE_HEADERS.id], body)) {
      throw new DtxInboxError(DtxInboxErrorCode.INVALID_MESSAGE, "webhook-id does not name the body's {gid}/{branchId}/{phase}");
    }
    return body as PhaseCallBody & { payload: JsonObject };
  }
}
