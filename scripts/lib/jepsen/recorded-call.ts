/** One line of a jepsen recorder's file (scripts/jepsen-recorder.ts): a call of a coordinator as the bank's host saw it. */
export interface RecordedCall {
  /** When it arrived (the recorder's Date.now(), the machine's real clock). */
  at: number;
  gid: string;
  branchId: string;
  mode: string;
  phase: string;
  /** x-tx-coordinator: `instance/leaseVersion`, or the instance alone for a call made outside a lease. */
  sender: string;
  /** The answer the sender got (503 for an injected failure, 502 for a bank down). */
  status: number;
  /** Answered by the recorder without reaching the bank. */
  injected: boolean;
  /** How long after it arrived its sender closed the connection, or null. */
  peerClosedMs: number | null;
}

/** A call whose connection its sender had closed before it arrived: the network delivered it late (after a partition healed). */
export const ABANDONED_WITHIN_MS = 15;
export const abandonedBySender = (call: RecordedCall): boolean => call.peerClosedMs !== null && call.peerClosedMs <= ABANDONED_WITHIN_MS;
