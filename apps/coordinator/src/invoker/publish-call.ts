import { callId, signCall, type CallOutcome, type PhaseCallBody, type SignedCallHeaders, type TraceContextHeaders } from '@nest-dtx/protocol';
import type { ParticipantRecord } from '../store/records.js';

/** What goes to a publish target: the exact bytes, the stable id consumers dedupe on, and the signature over those bytes. */
export interface PublishedCall {
  /** `{gid}/{branchId}/{phase}`, the webhook-id: the same on every delivery of this call. */
  id: string;
  /** The JSON body of PROTOCOL.md 5.1, exactly as published. */
  content: string;
  /** The signature's three headers, and the call's W3C trace context when it has one. */
  headers: SignedCallHeaders & TraceContextHeaders;
}

/**
 * The call as a publish target receives it: the 5.1 body, members in the protocol's order
 * (nothing else of `body` is published), signed at this moment with the participant's keys
 * over exactly these bytes (PROTOCOL.md 5.5).
 */
export function publishedCall(body: PhaseCallBody, keys: readonly Buffer[], trace?: TraceContextHeaders): PublishedCall {
  const { gid, branchId, mode, action, phase, payload } = body;
  const content = JSON.stringify({ gid, branchId, mode, action, phase, payload });
  const id = callId(body);
  const signature = signCall(keys, id, Date.now() / 1000, content);
  return { id, content, headers: trace ? { ...signature, ...trace } : signature };
}

/**
 * A publish target takes only msg's `execute`: a publish has no reply, and every other phase
 * needs one (registration allows mode msg only, and a check is refused at begin). Should
 * another phase come anyway (a registration changed under a running transaction), it is
 * transient rather than "delivered": counting a publish as an answer would decide for nobody.
 */
export function refusedByPublishTarget(participant: ParticipantRecord, body: PhaseCallBody): CallOutcome | null {
  if (body.mode === 'msg' && body.phase === 'execute') return null;
  return { kind: 'transient', error: `participant ${participant.name} is a publish target: it takes msg's execute only, not ${body.mode} ${body.phase} (it cannot reply)` };
}
