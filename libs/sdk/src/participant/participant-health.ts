import type { ParticipantRegistrationState } from './registration.service.js';

/** What asking the coordinator for its registry came to: whether it lists this participant, or why there was no usable answer. */
export type CoordinatorProbe = { ok: true; listed: boolean } | { ok: false; reason: string };

/** What is wrong, or null when the participant is healthy: the pure rule of isHealthy. */
export function healthProblem(
  registration: ParticipantRegistrationState,
  probe: CoordinatorProbe,
  name: string,
): string | null {
  if (!probe.ok) return probe.reason;
  switch (registration.state) {
    case 'pending':
      return `not registered with the coordinator yet${registration.lastError ? ` (last attempt: ${registration.lastError})` : ''}`;
    case 'refused':
      return `the coordinator refused the registration: ${registration.lastError ?? 'see the logs'}`;
    case 'registered':
    case 'disabled':
      return probe.listed ? null : `the coordinator does not list participant ${name}`;
  }
}
