import { ErrorCode } from '@nest-dtx/protocol';
import { CoordinatorError } from '../client/coordinator-error.js';

/**
 * A call refused for its signature may mean the coordinator rotated the secret: the participant
 * then registers again, but at most this often, since anyone who reaches it can send such calls.
 */
export const REFRESH_AFTER_REFUSAL_MIN_MS = 10_000;

/** How long to wait before registering again after the coordinator refused (401/403/4xx): an operator has to act first. */
export const REFUSED_RETRY_MS = 60_000;

/** Backoff of the first registration while the coordinator does not answer: 200 ms doubling to 5 s. */
export function transientRetryMs(attempt: number): number {
  return Math.min(5_000, 100 * 2 ** Math.min(attempt, 6));
}

/** Lets something through at most once per interval. */
export class RefreshGate {
  private last = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly minIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when the interval has passed since the last time it was true (and starts a new one). */
  tryPass(): boolean {
    const at = this.now();
    if (at - this.last < this.minIntervalMs) return false;
    this.last = at;
    return true;
  }
}

/**
 * Why a registration failed. `refused`: the coordinator answered and will answer the same until
 * someone changes something (a key, a name's owner, PARTICIPANT_HOSTS, PARTICIPANT_NETWORKS), so it is said once, as an
 * error, and tried again slowly. `transient`: no answer, or one worth retrying soon.
 */
export type RegistrationFailure = { kind: 'refused' | 'transient'; line: string };

export function classifyRegistrationFailure(error: unknown, name: string): RegistrationFailure {
  if (!(error instanceof CoordinatorError) || error.statusCode === 0 || error.statusCode >= 500 || error.code === ErrorCode.RATE_LIMITED) {
    return { kind: 'transient', line: String(error) };
  }
  const answer = `${error.statusCode} ${error.code}: ${error.message.slice(0, 200)}`;
  const refused = (cause: string): RegistrationFailure => ({
    kind: 'refused',
    line: `registration of participant "${name}" refused (${answer}): ${cause}; trying again every ${REFUSED_RETRY_MS / 1000} s`,
  });
  switch (error.code) {
    case ErrorCode.FORBIDDEN:
      return refused(`the name "${name}" is owned by another API key, and an operator must release it (or this key lacks the participant role)`);
    case ErrorCode.UNAUTHENTICATED:
      return refused('the coordinator requires an API key with the participant role (apiKey), and this one is missing or unknown');
    case ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED:
      return refused('the coordinator\'s PARTICIPANT_HOSTS does not list the host (or port) this participant registers');
    case ErrorCode.PARTICIPANT_ADDRESS_NOT_ALLOWED:
      return refused('the coordinator\'s egress policy (PARTICIPANT_NETWORKS) refuses the address this participant registers');
    default:
      return refused('the coordinator does not accept this registration');
  }
}
