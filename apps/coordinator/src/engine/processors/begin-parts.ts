import type { ParticipantsService } from '../../participants/participants.service.js';
import type { EventInput, NewBranch } from '../../store/records.js';
import { InvalidRequestError } from '../errors.js';
import type { BeginRequest, NewTransactionParts } from './mode-processor.js';

/** What the modes' begins share: the checks of fields more than one mode takes, and the history of a new transaction. */

/** `check` and `submit` belong to msg (PROTOCOL.md 3.1): any other mode refuses them. */
export function refuseMessageFields(request: BeginRequest): void {
  if (request.check) throw new InvalidRequestError('check', 'check is only for mode msg');
  if (request.submit !== undefined) throw new InvalidRequestError('submit', 'submit is only for mode msg');
}

/** `workflow` and `input` belong to mode workflow (PROTOCOL.md 3.7): any other mode refuses them. */
export function refuseWorkflowFields(request: BeginRequest): void {
  if (request.workflow) throw new InvalidRequestError('workflow', 'workflow is only for mode workflow');
  if (request.input !== undefined) throw new InvalidRequestError('input', 'input is only for mode workflow');
}

/** MAX_BRANCHES_PER_TRANSACTION at begin, as a refusal naming the field (the same limit holds for adds). */
function checkBranchCount(request: BeginRequest, limit: number): void {
  for (const field of ['branches', 'steps'] as const) {
    const count = request[field]?.length ?? 0;
    if (count > limit) throw new InvalidRequestError(field, `${field} must contain no more than ${limit} elements (MAX_BRANCHES_PER_TRANSACTION)`);
  }
}

/** The branches of `branches` (tcc, 2pc, msg): an id for each that has none (b1, b2, …), and none twice. */
export function namedBranches(request: BeginRequest): NewBranch[] {
  if (request.steps) throw new InvalidRequestError('steps', 'steps is only for mode saga');
  const branches = (request.branches ?? []).map((b, i) => ({
    branchId: b.branchId ?? `b${i + 1}`,
    participant: b.participant,
    action: b.action,
    payload: b.payload ?? {},
  }));
  const seen = new Set<string>();
  for (const [i, b] of branches.entries()) {
    if (seen.has(b.branchId)) throw new InvalidRequestError(`branches.${i}.branchId`, `branches.${i}.branchId ${b.branchId} is used twice`);
    seen.add(b.branchId);
  }
  return branches;
}

/**
 * The branches of a begin request: no more than MAX_BRANCHES_PER_TRANSACTION (`limit`), shaped
 * by the mode, and each checked to name a registered participant that exposes its action in
 * the mode, one by one so that the first at fault is the one named (`{field}.{i}`). Each takes
 * the registered spelling (names are case-insensitive), so every branch on it names it alike.
 */
export async function beginBranches(
  participants: ParticipantsService,
  limit: number,
  request: BeginRequest,
  field: 'branches' | 'steps',
  shape: (request: BeginRequest) => NewBranch[],
): Promise<NewBranch[]> {
  checkBranchCount(request, limit);
  const resolved: NewBranch[] = [];
  for (const [i, b] of shape(request).entries()) {
    const participant = await participants.resolve(b.participant, b.action, request.mode, `${field}.${i}`);
    resolved.push({ ...b, participant: participant.name });
  }
  return resolved;
}

/** A new transaction's parts with its history: created, then each branch added. */
export function withBeginHistory(request: BeginRequest, parts: Omit<NewTransactionParts, 'events'>): NewTransactionParts {
  const status = parts.status ?? 'active';
  const branchStatus = parts.branchStatus ?? 'pending';
  // One array, pushed to: no mapped copy spread into another on every begin.
  const events: EventInput[] = [{ type: 'created', to: status, detail: { mode: request.mode, oneShot: parts.oneShot, timeoutMs: request.timeoutMs } }];
  for (const b of parts.branches) events.push({ type: 'branch_added', branchId: b.branchId, to: branchStatus, detail: { participant: b.participant, action: b.action } });
  return { ...parts, events };
}
