/**
 * `npm run docs:check` inside `npm test`: every TypeScript block of the README, the packages'
 * READMEs and docs/ compiles against the packed packages, and every relative link reaches its
 * page and heading (scripts/lib/docs-check.ts). The report is printed either way, so a failing
 * run names each block at its markdown line.
 */
import { describe, expect, it } from 'vitest';
import { checkDocs, formatReport } from '../../scripts/lib/docs-check.js';

describe('the documentation', () => {
  it('compiles every TypeScript block against the packed packages, and links only to what exists', async () => {
    const report = await checkDocs();
    process.stdout.write(`${formatReport(report)}\n`);
    expect(report.failures).toEqual([]);
    // The README's example, the getting-started app and the guides: far more than a handful.
    expect(report.compiled).toBeGreaterThan(20);
    expect(report.compiledAsProjectFiles).toBeGreaterThan(0);
    // Every skip says why; there are few of them.
    expect(report.skipped.every((skip) => skip.reason.length > 10)).toBe(true);
    expect(report.skipped.length).toBeLessThanOrEqual(3);
  }, 600_000);
});
