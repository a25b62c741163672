import { BRANCH_MESSAGE_PATTERN } from './participant-call.js';

/**
 * Where the calls of the broker transports travel (docs/transports.md "RabbitMQ and NATS"). Participants
 * of these transports register no address: the coordinator uses its own RABBITMQ_URL or
 * NATS_URL, and every participant shares that broker, so each name below is derived from the
 * participant's name and each participant receives only its own calls. The SDK and the
 * coordinator both take the names from here.
 */

/** Prefix of the RabbitMQ queue a request/reply participant consumes its calls from. */
export const RABBITMQ_PARTICIPANT_QUEUE_PREFIX = 'dtx.participant.';

/**
 * RabbitMQ request/reply: each participant has its own queue, `dtx.participant.<name>`, in
 * which the coordinator puts messages of the plain `tx.branch` pattern (the NestJS RMQ
 * transport routes by queue, so the pattern needs no qualifier). Several instances of one
 * participant consume the same queue and share its calls.
 */
export function rabbitmqParticipantQueue(participant: string): string {
  return `${RABBITMQ_PARTICIPANT_QUEUE_PREFIX}${participant}`;
}

/**
 * NATS request/reply: the pattern (which the NestJS NATS transport uses as the subject) is
 * `tx.branch.<name>`, `tx.branch` qualified with the participant's name as on Redis.
 */
export function natsBranchSubject(participant: string): string {
  return `${BRANCH_MESSAGE_PATTERN}.${participant}`;
}

/**
 * The NATS queue group a participant's instances subscribe in, so that each call is handled
 * by one of them (without a group every instance would run it).
 */
export function natsParticipantQueueGroup(participant: string): string {
  return `${RABBITMQ_PARTICIPANT_QUEUE_PREFIX}${participant}`;
}

/**
 * Why `subject` is no NATS subject one can publish to, or null when it is one: tokens are
 * separated by `.`, none may be empty, hold white space, or be a wildcard (`*`, `>`).
 * Participant and action names (`[A-Za-z0-9_.:-]`) fail only by an empty token: a leading or
 * trailing dot, or two in a row.
 */
export function natsSubjectProblem(subject: string): string | null {
  if (subject.length === 0) return 'a NATS subject cannot be empty';
  if (/\s/.test(subject)) return 'a NATS subject holds no white space';
  for (const token of subject.split('.')) {
    if (token === '') return 'a NATS subject has no empty token: no leading or trailing dot, no two dots in a row';
    if (token === '*' || token === '>') return 'a NATS subject to publish to holds no wildcard';
  }
  return null;
}

/** Connection options of the NATS client (servers, user/pass or token) from a nats:// (or tls://) URL. */
export function natsConnectionOptions(url: string): { servers: string; user?: string; pass?: string; token?: string } {
  const parsed = new URL(url);
  if (parsed.protocol !== 'nats:' && parsed.protocol !== 'tls:') throw new Error('a NATS URL starts with nats:// or tls://');
  if (!parsed.hostname) throw new Error('a NATS URL names a host');
  const servers = `${parsed.protocol}//${parsed.hostname.includes(':') && !parsed.hostname.startsWith('[') ? `[${parsed.hostname}]` : parsed.hostname}:${parsed.port || '4222'}`;
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  // nats://token@host: a user without a password is a token, as the NATS tools read it.
  if (user && !pass) return { servers, token: user };
  return { servers, ...(user ? { user, pass } : {}) };
}
