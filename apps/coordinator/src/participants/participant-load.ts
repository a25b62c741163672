import type { ParticipantLoadView } from '@nest-dtx/protocol';
import type { GateSnapshot } from '../overload/participant-gate.js';

/**
 * A participant's gate on this instance as GET /admin/participants shows it (`load`), or null
 * when this instance has not called the participant since it started (it has no gate yet).
 */
export function participantLoadView(snapshot: GateSnapshot | null): ParticipantLoadView | null {
  if (!snapshot) return null;
  return {
    inFlight: snapshot.inFlight,
    queued: snapshot.queued,
    limit: snapshot.limit,
    maxInFlight: snapshot.maxInFlight,
    breaker: snapshot.breaker,
    breakerRetryInMs: snapshot.breaker === 'open' ? snapshot.breakerRetryInMs : null,
    notMade: { breakerOpen: snapshot.refused.breakerOpen, queueFull: snapshot.refused.queueFull, queueTimeout: snapshot.refused.queueTimeout },
  };
}
