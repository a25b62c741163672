/**
 * Test-only fault switch. Inert unless DTX_TEST_CRASH_AT names a point: then the process
 * kills itself with SIGKILL (a real kill -9, no cleanup) when it reaches that point, for a gid
 * starting with DTX_TEST_CRASH_GID_PREFIX when that is set. The fault-injection tests and the
 * demo use it to crash the coordinator at an exact protocol step.
 */
export type CrashPoint =
  | 'after_begin'
  | 'after_branch_recorded'
  | 'after_phase1_calls'
  | 'after_decision'
  /** A phase-2 round under way: one call answered, the others possibly still in flight. */
  | 'mid_phase2'
  | 'after_phase2_calls'
  /** A saga's compensation between two rounds: some steps compensated and recorded, others not yet. */
  | 'during_compensation'
  /** msg: the caller answered the check-back, and the answer is not written yet. */
  | 'after_check_call';

/** Every point, for the fault-injection runner. */
export const CRASH_POINTS: readonly CrashPoint[] = [
  'after_begin',
  'after_branch_recorded',
  'after_phase1_calls',
  'after_decision',
  'mid_phase2',
  'after_phase2_calls',
  'during_compensation',
  'after_check_call',
];

// Read once: the switch is set when the process starts (every test and the demo start the
// coordinator with it), and a process.env read is a call into C++, made several times per
// transaction here for nothing.
const ARMED = process.env.DTX_TEST_CRASH_AT;
const GID_PREFIX = process.env.DTX_TEST_CRASH_GID_PREFIX;

export function crashPoint(point: CrashPoint, gid: string): void {
  if (ARMED !== point) return;
  const prefix = GID_PREFIX;
  if (prefix && !gid.startsWith(prefix)) return;
  process.stderr.write(`crash point ${point} reached for ${gid}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
