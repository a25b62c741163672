import type { TransactionView } from '@nest-dtx/protocol';
import type { LoadedTx } from '../store/records.js';

/** The API's view of a transaction (PROTOCOL.md 3.4). */
export function toTransactionView({ tx, branches }: LoadedTx): TransactionView {
  const view: TransactionView = {
    gid: tx.gid,
    mode: tx.mode,
    status: tx.status,
    reason: tx.reason,
    createdAt: tx.createdAt.toISOString(),
    updatedAt: tx.updatedAt.toISOString(),
    deadline: tx.deadline.toISOString(),
    metadata: tx.metadata,
    needsAttention: tx.needsAttention,
    branches: branches.map((b) => ({
      branchId: b.branchId,
      participant: b.participant,
      action: b.action,
      status: b.status,
      attempts: b.attempts,
      lastError: b.lastError,
      result: b.result,
      ...(b.kind ? { kind: b.kind } : {}),
      waitingSince: b.waitingSince ? b.waitingSince.toISOString() : null,
    })),
  };
  return tx.workflow ? { ...view, workflow: tx.workflow, input: tx.input, result: tx.result } : view;
}
