import { callId, ID_PATTERN, MODES, PHASES, type Phase, type PhaseCallBody } from '@nest-dtx/protocol';

/** Whether `body` is a phase call of PROTOCOL.md 5.1 in shape (ids, mode, phase, an object payload). */
export function isPhaseCall(body: unknown): body is PhaseCallBody {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return (
    typeof b.gid === 'string' && ID_PATTERN.test(b.gid) &&
    typeof b.branchId === 'string' && ID_PATTERN.test(b.branchId) &&
    typeof b.action === 'string' &&
    MODES.includes(b.mode as never) &&
    PHASES.includes(b.phase as never) &&
    // The payload is a JSON object on every call the coordinator sends (it stores `{}` when a
    // branch has none; PROTOCOL.md 5.1). Anything else is no phase call: without this check a
    // signed call with `"payload": "x"`, or none, reached the barrier and the business (a
    // rollback phase left its null-compensation marker and answered 2xx).
    typeof b.payload === 'object' && b.payload !== null && !Array.isArray(b.payload)
  );
}

/**
 * Whether `id` (the verified `webhook-id`) names the branch and phase of `body`: so that a
 * signature cannot be carried over to another branch's body, since the id is part of what is signed.
 */
export function signedIdNamesBody(id: string | string[] | undefined, body: unknown): boolean {
  const value = Array.isArray(id) ? id[0] : id;
  if (typeof body !== 'object' || body === null) return false;
  const { gid, branchId, phase } = body as Record<string, unknown>;
  if (typeof gid !== 'string' || typeof branchId !== 'string' || typeof phase !== 'string') return false;
  // Any string compares: an unknown phase simply cannot match a signed id for a real one.
  return value === callId({ gid, branchId, phase: phase as Phase });
}
