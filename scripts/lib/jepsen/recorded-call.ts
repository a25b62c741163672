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
  /** The bank whose recorder saw it (added when the suite reads the files). */
  bank?: string;
}

/** A call whose connection its sender had closed (FIN) when it arrived, or within this many ms. */
export const ABANDONED_WITHIN_MS = 15;
export const abandonedBySender = (call: RecordedCall): boolean => call.peerClosedMs !== null && call.peerClosedMs <= ABANDONED_WITHIN_MS;

/** How long after a cut healed TCP may still deliver what it held (its retransmission backs off to seconds). */
export const HELD_BY_NETWORK_MS = 15_000;

/** A cut between an instance and a bank ('*': the instance from everything), and when it held. */
export interface CutWindow {
  instance: string;
  peer: string;
  from: number;
  to: number;
}

/**
 * Whether the network may have held this call: its sender had given up on it (closed the
 * connection) before it arrived, during or shortly after a cut between that sender and this
 * bank, so TCP retransmitted it after the heal. Any other late call is the sender's doing (one
 * sent at once after a pause, say, and abandoned as its timer fired) and is checked as such.
 */
export function heldByNetwork(call: RecordedCall, cuts: readonly CutWindow[]): boolean {
  if (!abandonedBySender(call)) return false;
  const instance = call.sender.split('/')[0];
  return cuts.some((w) => w.instance === instance && (w.peer === '*' || w.peer === call.bank) && call.at >= w.from && call.at <= w.to + HELD_BY_NETWORK_MS);
}

/** An instance stopped (SIGSTOP) at `from` and resumed (SIGCONT) at `to`, real clock. */
export interface PauseWindow {
  instance: string;
  from: number;
  to: number;
}

/** How soon after its sender resumed a call it had already let go before the pause reaches the recorder. */
export const RESUME_SEND_MS = 100;

/**
 * Whether this call left its sender in the instant it was stopped: the sender had checked its
 * lease (monotonic clock, time enough for the call) and was writing the call when SIGSTOP came,
 * so the write finished as it resumed, after the lease. No check in the sender can close the gap
 * between its last look at the clock and the write (only a fence at the participant could, and
 * the protocol has none); what the sender must not do is start a call after a pause, and such a
 * call comes later than this (it first finds its lease gone). Arrived within RESUME_SEND_MS of
 * its sender's resume.
 */
export function sentAtResume(call: RecordedCall, pauses: readonly PauseWindow[]): boolean {
  const instance = call.sender.split('/')[0];
  // `to` is read just after SIGCONT is sent: the sender may be running a few ms before it.
  return pauses.some((p) => p.instance === instance && call.at >= p.to - 10 && call.at <= p.to + RESUME_SEND_MS);
}
