/** The kinds of fault `npm run chaos` injects, and of transfer it makes; the CI test checks that each one happened. */
import { CRASH_POINTS, type CrashPoint } from '../../apps/coordinator/src/engine/crash-points.js';

/**
 * The transfers the runner makes: one per mode, AT (a 2PC transaction of the banks' AtAction
 * methods), and workflow (hosted by the runner itself, its legs as tcc steps).
 */
export const TRANSFER_KINDS = ['tcc', '2pc', 'saga', 'msg', 'at', 'workflow'] as const;
export type TransferKind = (typeof TRANSFER_KINDS)[number];

/**
 * Faults the proxy in front of a bank injects into one call. `cancel_overtakes_try` holds a
 * phase-1 call until the branch's rollback phase has been delivered, then delivers it (the bank
 * must refuse it); the `kill_bank_*` faults kill the bank with SIGKILL before it sees the call,
 * or after it applied the call but before its answer reaches the coordinator.
 */
export const PROXY_FAULTS = [
  'drop_call',
  'drop_answer',
  'duplicate_call',
  'delay_past_timeout',
  'answer_503',
  'cancel_overtakes_try',
  'kill_bank_before_apply',
  'kill_bank_after_apply',
] as const;
export type ProxyFault = (typeof PROXY_FAULTS)[number];
/**
 * Faults on a whole process for a while. `slow_participant` makes one bank slow for a few
 * seconds: its proxy holds every call for about CALL_TIMEOUT_MS (some answers arrive just in
 * time, slower than the adaptive limit likes, some just too late), so the coordinators' gates
 * shrink that bank's limit, queue its calls and refuse what cannot wait.
 */
export const PROCESS_FAULTS = ['kill_coordinator', 'crash_point', 'kill_participant', 'pause_coordinator', 'cut_postgres', 'stop_redis', 'slow_participant'] as const;
export type FaultKind = ProxyFault | (typeof PROCESS_FAULTS)[number] | `crash_point:${CrashPoint}`;

/** Every kind, each crash point apart: what a run that exercised everything has counted. */
export const EVERY_FAULT: readonly FaultKind[] = [
  ...PROXY_FAULTS,
  ...PROCESS_FAULTS,
  ...CRASH_POINTS.map((point): FaultKind => `crash_point:${point}`),
];

