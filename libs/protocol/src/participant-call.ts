import type { Mode, Phase } from './states.js';
import type { Json } from './views.js';

/** Body of every coordinator -> participant call (PROTOCOL.md 5.1; the same data for 5.2). */
export interface PhaseCallBody {
  gid: string;
  branchId: string;
  mode: Mode;
  action: string;
  phase: Phase;
  payload: Json;
}

/** Headers the coordinator sends on HTTP participant calls. */
export const TX_HEADERS = {
  gid: 'x-tx-gid',
  branchId: 'x-tx-branch-id',
  /** Which coordinator instance sent the call, and under which lease (`instance/version`), for operators and fault-injection checks. */
  instance: 'x-tx-coordinator',
} as const;

/** Message pattern of the NestJS microservices transports (PROTOCOL.md 5.2). */
export const BRANCH_MESSAGE_PATTERN = 'tx.branch';

/**
 * On the Redis transport every participant shares one Redis, and a pattern is a pub/sub
 * channel: the `tx.branch` pattern is qualified with the participant's name so that each call
 * reaches only the participant it is for. (TCP participants have their own address and use
 * the plain pattern.)
 */
export function redisBranchPattern(participant: string): { cmd: typeof BRANCH_MESSAGE_PATTERN; participant: string } {
  return { cmd: BRANCH_MESSAGE_PATTERN, participant };
}

export type MicroserviceReply = { outcome: 'ok'; result: Json } | { outcome: 'failed'; message: string };

/** What a participant call came to, once mapped from the transport's answer. */
export type CallOutcome =
  | { kind: 'ok'; result: Json }
  | { kind: 'failed'; error: Json }
  | { kind: 'transient'; error: string };

/** Connection options of the NestJS Redis transport (host, port, password, db) from a redis:// URL. */
export function redisTransportOptions(url: string): { host: string; port: number; password?: string; db?: number } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.pathname.length > 1 ? { db: Number(parsed.pathname.slice(1)) } : {}),
  };
}
