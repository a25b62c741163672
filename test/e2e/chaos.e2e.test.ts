/**
 * CI's bounded run of the fault-injection runner (`npm run chaos`): real coordinator instances,
 * banks, Postgres and Redis, with every kind of fault at least once and transfers of every kind
 * (tcc, 2pc, saga, msg, AT and workflow). The runner checks the invariants itself; this test holds
 * it to zero violations, to having injected every fault and to having made every kind of
 * transfer, workflows among them, some of them decided by the coordinator's resume.
 */
import { describe, expect, it } from 'vitest';
import { EVERY_FAULT, TRANSFER_KINDS } from '../../scripts/lib/chaos-faults.js';
import { runScript } from '../../scripts/lib/stack.js';

interface ChaosReport {
  seed: number;
  transfers: number;
  committed: number;
  rolledBack: number;
  faults: Record<string, number>;
  violations: number;
  transfersByKind: Record<string, number>;
  at: { transfers: number; undoLeft: number; locksLeft: number };
  workflow: { transfers: number; committed: number; rolledBack: number; stoppedAfterFirstStep: number; resumeCalls: number; decidedByResume: number; badSignatures: number };
}

// A new seed each run, printed (and in the report) so that a failure can be rerun as it happened.
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000_007);
const TRANSFERS = 250;

describe('fault injection (bounded run of npm run chaos)', () => {
  it(`ends every transfer committed or rolled back everywhere under every kind of fault (seed ${SEED})`, async () => {
    const { code, output } = await runScript('chaos', '--transfers', String(TRANSFERS), '--seed', String(SEED));
    console.log(output.split('\n').filter((line) => !line.startsWith('CHAOS_REPORT')).join('\n'));
    const line = output.split('\n').find((l) => l.startsWith('CHAOS_REPORT '));
    expect(line, 'the runner printed no report').toBeDefined();
    const report = JSON.parse((line ?? '').slice('CHAOS_REPORT '.length)) as ChaosReport;

    expect(report.seed).toBe(SEED);
    expect(report.violations).toBe(0);
    const missing = EVERY_FAULT.filter((kind) => !(report.faults[kind] > 0));
    expect(missing, 'fault kinds never injected').toEqual([]);
    const kindsMissing = TRANSFER_KINDS.filter((kind) => !(report.transfersByKind[kind] > 0));
    expect(kindsMissing, 'transfer kinds never made').toEqual([]);
    // AT transfers went through the faults too, and the banks kept no undo or lock row of them
    // (a leftover is also counted as a violation). How many of them commit is left to chance:
    // under this many faults few do, and a bounded run may see none.
    expect(report.at.transfers).toBe(report.transfersByKind.at);
    expect(report.at.undoLeft + report.at.locksLeft).toBe(0);
    // Workflow transfers (hosted by the runner) ran, and every run had some stop after their first
    // step (the first one always does): the coordinator resumed them, and runs its resume started
    // decided some. Every resume came signed with the host's secret.
    expect(report.workflow.transfers).toBe(report.transfersByKind.workflow);
    expect(report.workflow.transfers).toBeGreaterThan(0);
    expect(report.workflow.stoppedAfterFirstStep).toBeGreaterThan(0);
    expect(report.workflow.resumeCalls).toBeGreaterThan(0);
    expect(report.workflow.decidedByResume).toBeGreaterThan(0);
    expect(report.workflow.badSignatures).toBe(0);
    // Faults must not turn every transfer into a rollback: some commit, some roll back.
    expect(report.committed).toBeGreaterThan(0);
    expect(report.rolledBack).toBeGreaterThan(0);
    expect(code).toBe(0);
  }, 20 * 60_000);
});
