/**
 * CI's short seeded run of the jepsen fault suite (`npm run jepsen`): each fault kind briefly
 * (a few dozen transfers, and more until each of its faults has happened once; `--quick`: faults
 * half as long and half as far apart), held to zero
 * violations and every transaction terminal. A kind is skipped, with its reason, only when a
 * tool it needs is missing (ip/tc, faketime, haproxy, Postgres' cluster tools, root).
 *
 * The clock kind runs instances 30 s ahead and behind, stepped while paused: it failed before
 * the coordinator measured time against Postgres and a monotonic clock (issue 24).
 */
import { describe, expect, it } from 'vitest';
import { runScript } from '../../scripts/lib/stack.js';
import { FAULT_KINDS, type FaultKindName } from '../../scripts/lib/jepsen/faults.js';
import { missingFor } from '../../scripts/lib/jepsen/requirements.js';

interface KindReport {
  kind: string;
  seed: number;
  available: boolean;
  reason?: string;
  transfers: number;
  committed: number;
  rolledBack: number;
  open: number;
  faults: Record<string, number>;
  violations: number;
  violationSamples: string[];
}

// A new seed each run, printed (and in the report) so that a failure can be rerun as it happened.
const SEED = Number(process.env.JEPSEN_SEED ?? Date.now() % 1_000_000_007);
const TRANSFERS = 50;

async function runKind(kind: FaultKindName): Promise<KindReport> {
  const { code, output } = await runScript('jepsen', '--fault', kind, '--seed', String(SEED), '--transfers', String(TRANSFERS), '--quick');
  console.log(output.split('\n').filter((line) => !line.startsWith('JEPSEN_REPORT')).join('\n'));
  const line = output.split('\n').find((l) => l.startsWith('JEPSEN_REPORT '));
  expect(line, `the ${kind} run printed no report (exit ${code})`).toBeDefined();
  return JSON.parse((line ?? '').slice('JEPSEN_REPORT '.length)) as KindReport;
}

describe(`jepsen fault suite, short run (seed ${SEED})`, () => {
  for (const kind of FAULT_KINDS) {
    const missing = missingFor(kind);
    it.skipIf(missing !== null)(`${kind}: every transfer ends, no violation${missing ? ` (skipped: ${missing})` : ''}`, async () => {
      const report = await runKind(kind);
      expect(report.available, report.reason).toBe(true);
      expect(report.seed).toBe(SEED);
      expect(report.violationSamples, `${kind} violations`).toEqual([]);
      expect(report.violations).toBe(0);
      expect(report.open, 'transactions left open').toBe(0);
      expect(Object.values(report.faults).reduce((a, b) => a + b, 0), 'faults injected').toBeGreaterThan(0);
      expect(report.committed).toBeGreaterThan(0);
    }, 6 * 60_000);
  }
});
