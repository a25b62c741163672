/**
 * The spin model of the coordinator (model/dtx.pml, model/README.md), checked exhaustively by
 * scripts/model-check.ts: every property of the model holds over a state space that is not
 * empty, the reachability checks are refuted (the model is not vacuous), every mutant is caught
 * with a counterexample, also with the operator's retry in the model. Needs spin (the apt package
 * `spin`) and gcc.
 */
import { describe, expect, it } from 'vitest';
import { formatReport, ModelToolMissingError, REACHABILITY, runModelChecks, SAFETY_PROPERTIES, spinVersion, type ModelReport } from '../../scripts/model-check.js';

async function spinOrExplain(): Promise<string> {
  try {
    return await spinVersion();
  } catch (error) {
    if (error instanceof ModelToolMissingError) {
      throw new Error(`the model check needs spin, which is missing: ${error.message}`);
    }
    throw error;
  }
}

describe('the spin model of the coordinator (model/dtx.pml)', () => {
  it('holds on the model, reaches what it must, and catches every mutant', { timeout: 300_000 }, async () => {
    expect(await spinOrExplain()).toMatch(/Spin Version 6/);
    const report: ModelReport = await runModelChecks();
    // The whole report in the output when anything below fails.
    const text = formatReport(report);

    const model = report.results.filter((r) => r.variant === 'model' && r.role === 'model');
    expect(model.map((r) => r.property).sort(), text).toEqual([...SAFETY_PROPERTIES, 'terminates'].sort());
    for (const r of model) {
      expect(r.errors, `${r.property}\n${text}`).toBe(0);
      expect(r.complete, `${r.property} searched the whole state space\n${text}`).toBe(true);
      expect(r.statesStored, `${r.property}\n${text}`).toBeGreaterThan(10_000);
    }
    expect(model.find((r) => r.property === 'terminates')?.search).toBe('liveness');

    // With the operator's retry, which leaves a row under a live lease to its holder: every safety property.
    const withRetry = report.results.filter((r) => r.variant === 'ADMIN_RETRY');
    expect(withRetry.map((r) => r.property).sort(), text).toEqual([...SAFETY_PROPERTIES].sort());
    for (const r of withRetry) expect(r.errors, `ADMIN_RETRY ${r.property}\n${text}`).toBe(0);

    const reached = report.results.filter((r) => r.role === 'reachability');
    expect(reached.map((r) => r.property).sort(), text).toEqual([...REACHABILITY].sort());
    for (const r of reached) expect(r.errors, `${r.property} reached\n${text}`).toBeGreaterThan(0);

    expect(report.mutants.map((m) => m.mutant).sort()).toEqual(['ADMIN_RETRY_OVER_LEASE', 'NO_ANTI_HANGING', 'NO_FENCING', 'NO_RETRY']);
    for (const m of report.mutants) expect(m.caught, `mutant ${m.mutant} caught\n${text}`).toBe(true);
    expect(report.mutants.find((m) => m.mutant === 'NO_FENCING')?.caughtBy).toContain('no_reversal');
    expect(report.mutants.find((m) => m.mutant === 'NO_ANTI_HANGING')?.caughtBy).toContain('anti_hanging');
    expect(report.mutants.find((m) => m.mutant === 'ADMIN_RETRY_OVER_LEASE')?.caughtBy).toEqual(['fenced_phase2']);
    // Each catch comes with its counterexample, narrated step by step.
    for (const r of report.results.filter((x) => x.role === 'mutant' && x.errors > 0)) {
      expect(r.counterexample.length, `${r.variant} / ${r.property}\n${text}`).toBeGreaterThan(0);
    }
    const lateTry = report.results.find((r) => r.variant === 'NO_ANTI_HANGING' && r.property === 'anti_hanging');
    expect(lateTry?.counterexample.join('\n')).toMatch(/try after its cancel runs/);

    expect(report.failures, text).toEqual([]);
    expect(report.ok, text).toBe(true);
  });
});
