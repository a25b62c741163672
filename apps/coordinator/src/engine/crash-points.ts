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
  | 'after_phase2_calls';

export function crashPoint(point: CrashPoint, gid: string): void {
  const armed = process.env.DTX_TEST_CRASH_AT;
  if (!armed || armed !== point) return;
  const prefix = process.env.DTX_TEST_CRASH_GID_PREFIX;
  if (prefix && !gid.startsWith(prefix)) return;
  process.stderr.write(`crash point ${point} reached for ${gid}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
