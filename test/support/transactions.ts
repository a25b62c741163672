import type { NewTransaction } from '../../apps/coordinator/src/store/transaction.store.js';

/** A one-shot two-branch TCC transfer as the store receives it, for tests that write the log directly. */
export const newTransferInput = (gid: string, over: Partial<NewTransaction> = {}): NewTransaction => ({
  gid,
  mode: 'tcc',
  oneShot: true,
  concurrent: false,
  requestHash: 'h',
  metadata: { order: gid },
  timeoutMs: 60_000,
  firstAttemptInMs: 60_000,
  leaseOwner: null,
  traceParent: null,
  branches: [
    { branchId: 'b1', participant: 'bank', action: 'debit', payload: { amount: 1 } },
    { branchId: 'b2', participant: 'bank', action: 'credit', payload: { amount: 1 } },
  ],
  events: [{ type: 'created', to: 'active' }],
  ...over,
});
