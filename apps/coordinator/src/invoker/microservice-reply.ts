import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import {
  callId,
  MESSAGE_SIGNATURE_MEMBER,
  ongoingOutcome,
  readBranchLocks,
  signCall,
  type CallOutcome,
  type MicroserviceReply,
  type PhaseCallBody,
  type SignedPhaseCallMessage,
  type TraceContextHeaders,
} from '@nest-dtx/protocol';

/** What the NestJS microservices transports (TCP, Redis, RabbitMQ, NATS) share: the signed message and how a reply maps to an outcome. */

function isReply(value: unknown): value is MicroserviceReply {
  if (typeof value !== 'object' || value === null) return false;
  const outcome = (value as { outcome?: unknown }).outcome;
  return outcome === 'ok' || outcome === 'failed' || outcome === 'ongoing';
}

/** One line for an error of any shape a transport hands over (an Error, a reply's `err` object, a string). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) return JSON.stringify(error).slice(0, 500);
  return String(error);
}

/**
 * The data of a call (PROTOCOL.md 5.2): the 5.1 body plus `headers` with the three signature
 * values, signed over the body as JSON.stringify writes it (5.5; docs/security.md "Signed calls"),
 * and the call's W3C trace context (unsigned, as on HTTP; @nest-dtx/protocol trace-context.ts).
 */
export function signedMessage(body: PhaseCallBody, keys: readonly Buffer[], trace?: TraceContextHeaders): SignedPhaseCallMessage {
  const signature = signCall(keys, callId(body), Date.now() / 1000, JSON.stringify(body));
  return { ...body, [MESSAGE_SIGNATURE_MEMBER]: trace ? { ...signature, ...trace } : signature };
}

/**
 * A reply as an outcome. An ok reply may carry the rows an AT prepare locked (`locks`): for the
 * admin view only, so a malformed one is left out and the reply stays ok. An ongoing reply's
 * `retryAfterMs` is a hint: one that is not a positive whole number is dropped (clamped to an
 * hour when larger), and the reply stays ongoing (PROTOCOL.md 3.6).
 */
export function outcomeOfReply(reply: MicroserviceReply): CallOutcome {
  if (reply.outcome === 'failed') return { kind: 'failed', error: { message: reply.message } };
  if (reply.outcome === 'ongoing') return ongoingOutcome(reply);
  const result = reply.result ?? null;
  const locks = reply.locks === undefined ? null : readBranchLocks(reply.locks);
  return locks ? { kind: 'ok', result, locks } : { kind: 'ok', result };
}

/** What a call needs of a client, whatever its transport's event and status types. */
export type ReplyClient = Pick<ClientProxy, 'send'>;

/**
 * Sends one call and maps the reply: `{ outcome: 'ok' | 'failed' | 'ongoing' }`; an error, an
 * unexpected reply or no reply within `timeoutMs` is transient.
 */
export async function sendForReply(client: ReplyClient, pattern: string | Record<string, string>, data: unknown, timeoutMs: number): Promise<CallOutcome> {
  try {
    const reply: unknown = await firstValueFrom(client.send(pattern, data).pipe(timeout(timeoutMs)));
    if (!isReply(reply)) return { kind: 'transient', error: `unexpected reply: ${describeError(reply)}` };
    return outcomeOfReply(reply);
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    return { kind: 'transient', error: timedOut ? `no answer within ${timeoutMs} ms` : describeError(error) };
  }
}
