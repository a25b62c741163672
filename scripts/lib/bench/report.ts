/** The bench's figures as a text table and as JSON files under .data/bench/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../stack.js';
import type { RunResult } from './runner.js';

export const OUT_DIR = join(ROOT, '.data/bench');

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

export function table(results: RunResult[], withInstances: boolean): string {
  const withXact = results.some((r) => r.xactCommitsPerTx !== null);
  const header = [
    'mode',
    ...(withInstances ? ['instances'] : []),
    'concurrency',
    'tx/s',
    'direct tx/s',
    'ratio',
    'p50 ms',
    'p99 ms',
    'coord CPU ms/tx',
    'write commits/tx',
    ...(withXact ? ['xact_commit/tx'] : []),
    'failed',
  ];
  const rows = results.map((r) => [
    r.mode,
    ...(withInstances ? [String(r.instances)] : []),
    String(r.concurrency),
    fixed(r.txPerSecond, 0),
    fixed(r.direct.txPerSecond, 0),
    fixed(r.ratio, 3),
    fixed(r.p50Ms, 1),
    fixed(r.p99Ms, 1),
    fixed(r.coordinatorCpuMsPerTx, 2),
    `${r.foreignDatabases.length > 0 ? '*' : ''}${fixed(r.writeCommitsPerTx, 2)}`,
    ...(withXact ? [r.xactCommitsPerTx === null ? '' : fixed(r.xactCommitsPerTx, 2)] : []),
    r.failed + r.direct.failed === 0 ? '0' : `${r.failed}${r.direct.failed ? ` (direct ${r.direct.failed})` : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Remarks a reader needs: failures, rollbacks, undrained transactions. */
export function remarks(results: RunResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const where = `${r.mode} c=${r.concurrency}${r.instances > 1 ? ` ${r.instances} instances` : ''}`;
    if (r.failed > 0 || r.direct.failed > 0) lines.push(`${where}: ${r.failed} failed through the coordinator, ${r.direct.failed} direct; first error: ${r.firstError}`);
    if (r.rolledBack > 0) lines.push(`${where}: ${r.rolledBack} transactions ended rolled back`);
    if (r.undrained > 0) lines.push(`${where}: ${r.undrained} transactions were still not terminal when the drain gave up`);
    if (r.workflowResumes !== null && r.workflowResumes > 0) lines.push(`${where}: the coordinator called the workflow host ${r.workflowResumes} times (resumes): the run measured them too`);
  }
  const busy = results.filter((r) => r.foreignDatabases.length > 0);
  if (busy.length > 0) {
    const names = [...new Set(busy.flatMap((r) => r.foreignDatabases))].join(', ');
    lines.push(
      `* ${busy.length} of ${results.length} runs had other databases of the cluster busy meanwhile (${names}): their write commits/tx ` +
        'include those writes, and the machine was shared (xact_commit/tx, where measured, is the coordinator database alone).',
    );
  }
  return lines;
}

export interface BenchReport {
  startedAt: string;
  machine: { cores: number; node: string; clockTicksPerSecond: number };
  participants: string;
  options: unknown;
  results: RunResult[];
}

/** Writes results-<timestamp>.json and latest.json; returns their paths. */
export function writeJson(report: BenchReport): string[] {
  mkdirSync(OUT_DIR, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const paths = [join(OUT_DIR, `results-${stamp}.json`), join(OUT_DIR, 'latest.json')];
  const text = `${JSON.stringify(report, null, 2)}\n`;
  for (const path of paths) writeFileSync(path, text);
  return paths;
}
