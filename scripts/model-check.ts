/**
 * `npm run model [-- --faults 2 --liveness-faults 2 --admin-faults 2 --jobs 2 --only model --keep]`: checks the Promela model
 * of the coordinator (model/dtx.pml, described in model/README.md) exhaustively with spin.
 *
 * For the model, each safety property in its own search (spin -a, gcc -DSAFETY, ./pan -N
 * <property>), liveness under weak fairness (gcc -DNFAIR=3, ./pan -a -f -N terminates), and
 * reachability checks that spin must refute (a model where nothing happens satisfies every
 * safety property). The model again with the operator's retry (ADMIN_RETRY), at a smaller fault
 * budget. For each mutant (spin -D<MUTANT>) the properties that must catch it. Every build and
 * search runs in a temporary directory, `--jobs` at a time.
 *
 * Prints one row per search (states stored, transitions, depth, errors, seconds) and the
 * counterexample of every search that found one, as the model narrates it. Exits non-zero when
 * a property of the model fails, a reachability check is not refuted, or a mutant is not caught. Needs `spin` (apt package `spin`; or $SPIN) and a C compiler ($CC, gcc).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export type Search = 'safety' | 'liveness';
/** holds: spin finds no error. violated: spin finds a counterexample. */
export type Expectation = 'holds' | 'violated';
export type Role = 'model' | 'reachability' | 'mutant';

export interface CheckSpec {
  readonly property: string;
  readonly expect: Expectation;
}

/** One build of the model (spin -a with its switches, gcc for one kind of search) and its searches. */
export interface VariantSpec {
  /** What the report calls it: `model`, or the switch (-D) it is built with. */
  readonly name: string;
  readonly role: Role;
  readonly defines: readonly string[];
  readonly faults: number;
  readonly search: Search;
  readonly checks: readonly CheckSpec[];
}

export interface CheckResult {
  readonly variant: string;
  readonly role: Role;
  readonly property: string;
  readonly search: Search;
  readonly faults: number;
  readonly expect: Expectation;
  readonly errors: number;
  readonly statesStored: number;
  /** States visited: more than stored under fairness (pan's copies per process), else equal. */
  readonly statesVisited: number;
  readonly transitions: number;
  readonly depth: number;
  /** Wall-clock seconds of the search (not the build). */
  readonly seconds: number;
  /** The search covered the whole state space (no error stopped it, nothing truncated it). */
  readonly complete: boolean;
  /** The model's narration of the counterexample, one line per step (when errors > 0). */
  readonly counterexample: readonly string[];
  /** Why the search could not be trusted (pan's own complaint), if it could not. */
  readonly problem: string | null;
  /** The result is what `expect` says (for a mutant's check: it found the error). */
  readonly asExpected: boolean;
}

export interface MutantVerdict {
  readonly mutant: string;
  readonly caughtBy: readonly string[];
  readonly caught: boolean;
}

export interface ModelReport {
  readonly spinVersion: string;
  readonly results: readonly CheckResult[];
  readonly mutants: readonly MutantVerdict[];
  readonly seconds: number;
  readonly ok: boolean;
  /** One line per way the report is not ok. */
  readonly failures: readonly string[];
}

export interface ModelCheckOptions {
  /** Fault budget of the safety, reachability and mutant searches (model FAULTS). */
  faults?: number;
  /** Fault budget of the liveness search (fairness multiplies the states: a smaller budget). */
  livenessFaults?: number;
  /** Fault budget of the searches with the operator's retry. */
  adminFaults?: number;
  /** Builds and searches at once. */
  jobs?: number;
  /** Keep the temporary directory (its path is logged). */
  keep?: boolean;
  /** Where progress goes; nothing by default. */
  log?: (line: string) => void;
  /** Only these variants (by name), e.g. ['model']; all by default. */
  only?: readonly string[];
}

/** spin, or gcc, is not installed: the checks cannot run. */
export class ModelToolMissingError extends Error {
  constructor(readonly tool: string, readonly detail: string) {
    super(
      tool === 'spin'
        ? `spin is not installed (${detail}): install the apt package \`spin\` (apt-get install -y spin), or set SPIN to its path`
        : `${tool} is not installed (${detail}): a C compiler is needed to build spin's verifier (set CC)`,
    );
    this.name = 'ModelToolMissingError';
  }
}

export const SAFETY_PROPERTIES = ['atomicity', 'atomic_end', 'no_reversal', 'anti_hanging', 'fenced_phase2', 'no_deadlock'] as const;
export const REACHABILITY = ['reach_commit', 'reach_rollback', 'reach_null_compensation', 'reach_takeover_commit'] as const;

const holds = (property: string): CheckSpec => ({ property, expect: 'holds' });
const violated = (property: string): CheckSpec => ({ property, expect: 'violated' });

/** Every build and search the report is made of. */
export function variants(faults: number, livenessFaults: number, adminFaults: number): VariantSpec[] {
  return [
    { name: 'model', role: 'model', defines: [], faults, search: 'safety', checks: SAFETY_PROPERTIES.map(holds) },
    { name: 'model', role: 'reachability', defines: [], faults, search: 'safety', checks: REACHABILITY.map(violated) },
    { name: 'model', role: 'model', defines: [], faults: livenessFaults, search: 'liveness', checks: [holds('terminates')] },
    // Writes without the version: a stale instance overwrites the decision another wrote.
    {
      name: 'NO_FENCING',
      role: 'mutant',
      defines: ['NO_FENCING'],
      faults,
      search: 'safety',
      checks: ['no_reversal', 'atomicity', 'atomic_end', 'fenced_phase2'].map(violated),
    },
    // A try after its cancel runs: a reservation held for good by a rolled-back transaction.
    { name: 'NO_ANTI_HANGING', role: 'mutant', defines: ['NO_ANTI_HANGING'], faults, search: 'safety', checks: ['anti_hanging', 'atomic_end'].map(violated) },
    // An incomplete phase-2 round never retried: the transaction never ends.
    { name: 'NO_RETRY', role: 'mutant', defines: ['NO_RETRY'], faults: livenessFaults, search: 'liveness', checks: [violated('terminates')] },
    // The operator's retry (AdminService.retry -> makeDue) beside everything else: it makes the
    // row due only when no instance holds a live lease, so every property still holds.
    {
      name: 'ADMIN_RETRY',
      role: 'model',
      defines: ['ADMIN_RETRY'],
      faults: adminFaults,
      search: 'safety',
      checks: SAFETY_PROPERTIES.map(holds),
    },
    // The retry as it was: it took the row from a live lease in the database only, and the
    // holder sent one more phase-2 round under its in-memory lease (same decision, harmless, but
    // a call under a fenced-off lease).
    {
      name: 'ADMIN_RETRY_OVER_LEASE',
      role: 'mutant',
      defines: ['ADMIN_RETRY', 'ADMIN_RETRY_OVER_LEASE'],
      faults: adminFaults,
      search: 'safety',
      checks: [violated('fenced_phase2')],
    },
  ];
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], cwd: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

async function required(command: string, args: readonly string[], cwd: string, what: string): Promise<Ran> {
  const ran = await run(command, args, cwd);
  if (ran.code !== 0) throw new Error(`${what} failed (exit ${ran.code}): ${command} ${args.join(' ')}\n${ran.stdout}${ran.stderr}`.trim());
  return ran;
}

/** `spin -V`, or ModelToolMissingError. */
export async function spinVersion(spin = process.env.SPIN ?? 'spin'): Promise<string> {
  try {
    const ran = await run(spin, ['-V'], process.cwd());
    const version = /Spin Version [^\n]*/.exec(ran.stdout + ran.stderr)?.[0];
    if (ran.code !== 0 || !version) throw new Error(`\`${spin} -V\` answered: ${(ran.stdout + ran.stderr).trim() || `exit ${ran.code}`}`);
    return version.trim();
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') throw new ModelToolMissingError('spin', `no ${spin} on PATH`);
    throw error;
  }
}

async function compilerVersion(cc: string): Promise<void> {
  try {
    await required(cc, ['--version'], process.cwd(), cc);
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') throw new ModelToolMissingError(cc, `no ${cc} on PATH`);
    throw error;
  }
}

/** model/dtx.pml, found from this file (scripts/ in the sources, dist/scripts/ once built). */
export function modelPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'model', 'dtx.pml');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('model/dtx.pml not found above ' + path.dirname(fileURLToPath(import.meta.url)));
    dir = parent;
  }
}

const number = (text: string, pattern: RegExp): number => {
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
};

/** What pan printed, as figures. */
export function parsePan(output: string): Pick<CheckResult, 'errors' | 'statesStored' | 'statesVisited' | 'transitions' | 'depth' | 'complete' | 'problem'> {
  const stored = number(output, /([\d.e+]+) states, stored/);
  const visited = /states, stored \(([\d.e+]+) visited\)/.exec(output);
  const problems = [
    /pan: out of memory[^\n]*/.exec(output)?.[0],
    /error: max search depth too small[^\n]*/.exec(output)?.[0],
    /pan: error: [^\n]*/.exec(output)?.[0],
    /pan: reached -DMEMLIM bound[^\n]*/.exec(output)?.[0],
  ].filter((p): p is string => p !== undefined);
  const summary = /State-vector \d+ byte, depth reached (\d+), errors: (\d+)/.exec(output);
  if (!summary) problems.push('no summary line in pan output');
  return {
    errors: summary ? Number(summary[2]) : 0,
    statesStored: stored,
    statesVisited: visited ? Number(visited[1]) : stored,
    transitions: number(output, /([\d.e+]+) transitions \(=/),
    depth: summary ? Number(summary[1]) : 0,
    complete: summary !== null && !/Search not completed/.test(output) && problems.length === 0,
    problem: problems.length > 0 ? problems.join('; ') : null,
  };
}

/** The model's printf narration of a replayed trail (pan -S -r), without pan's own lines. */
export function narration(replay: string): string[] {
  const lines: string[] = [];
  for (const line of replay.split('\n')) {
    // Then pan's dump of the last state.
    if (/^(#processes|global vars:|local vars)/.test(line)) break;
    const text = line.trimEnd();
    if (text.includes('START OF CYCLE')) lines.push('[the rest repeats forever]');
    else if (text !== '' && !/^(\s|pan[:\s]|spin:|MSC:|warning:)/.test(text)) lines.push(text);
  }
  return lines;
}

/** At most `jobs` at once. */
function limiter(jobs: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= jobs) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

function label(role: Role, name: string): string {
  return role === 'reachability' || name === 'model' ? 'model' : `${role} ${name}`;
}

export async function runModelChecks(options: ModelCheckOptions = {}): Promise<ModelReport> {
  const started = performance.now();
  const log = options.log ?? (() => undefined);
  const spin = process.env.SPIN ?? 'spin';
  const cc = process.env.CC ?? 'gcc';
  const version = await spinVersion(spin);
  await compilerVersion(cc);
  const model = modelPath();
  const faults = options.faults ?? 2;
  const livenessFaults = options.livenessFaults ?? 2;
  const adminFaults = options.adminFaults ?? 2;
  const jobs = Math.max(1, options.jobs ?? Math.min(2, os.availableParallelism()));
  const limit = limiter(jobs);
  const selected = variants(faults, livenessFaults, adminFaults).filter((v) => !options.only || options.only.includes(v.name));
  const root = mkdtempSync(path.join(os.tmpdir(), 'dtx-model-'));
  log(`${version}; model ${model}; work in ${root}; ${jobs} job(s) at once`);

  try {
    // One build per (switches, budget, kind of search): the reachability checks share the model's safety build.
    const builds = new Map<string, Promise<string>>();
    const build = (v: VariantSpec): Promise<string> => {
      const key = `${v.defines.join('+') || 'model'}-f${v.faults}-${v.search}`;
      let built = builds.get(key);
      if (!built) {
        built = limit(async () => {
          const dir = path.join(root, key);
          mkdirSync(dir);
          copyFileSync(model, path.join(dir, 'dtx.pml'));
          const t0 = performance.now();
          await required(spin, [...v.defines.map((d) => `-D${d}`), `-DFAULTS=${v.faults}`, '-a', 'dtx.pml'], dir, 'spin -a');
          const searchFlags = v.search === 'safety' ? ['-DSAFETY'] : ['-DNFAIR=3'];
          // A mutant's searches are small: a faster build pays more than a faster verifier.
          const optimise = v.role === 'model' || v.role === 'reachability' ? '-O2' : '-O1';
          await required(cc, [optimise, '-w', '-DMEMLIM=4096', ...searchFlags, '-o', 'pan', 'pan.c'], dir, 'gcc pan.c');
          log(`built ${key} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
          return dir;
        });
        builds.set(key, built);
      }
      return built;
    };

    const runs: Promise<CheckResult>[] = selected.flatMap((v) =>
      v.checks.map((check) =>
        build(v).then((dir) =>
          limit(async () => {
            const trail = `trail_${check.property}`;
            const searchArgs = v.search === 'safety' ? [] : ['-a', '-f'];
            const t0 = performance.now();
            const ran = await run('./pan', ['-n', '-w22', '-m100000', ...searchArgs, '-N', check.property, `-t${trail}`], dir);
            const seconds = (performance.now() - t0) / 1000;
            const figures = parsePan(ran.stdout + ran.stderr);
            let counterexample: string[] = [];
            if (figures.errors > 0 && existsSync(path.join(dir, `dtx.pml.${trail}`))) {
              const replay = await run('./pan', [...searchArgs, '-N', check.property, '-S', '-r', `dtx.pml.${trail}`], dir);
              counterexample = narration(replay.stdout);
            }
            const found = figures.errors > 0;
            const asExpected = figures.problem === null && (check.expect === 'violated' ? found : !found && figures.complete);
            const result: CheckResult = {
              variant: v.name,
              role: v.role,
              property: check.property,
              search: v.search,
              faults: v.faults,
              expect: check.expect,
              ...figures,
              seconds,
              counterexample,
              asExpected,
            };
            log(
              `${label(v.role, v.name)} ${check.property}: ${found ? `${figures.errors} error(s)` : 'no error'}, ${figures.statesStored} states stored, ${seconds.toFixed(1)} s`,
            );
            return result;
          }),
        ),
      ),
    );
    const results = await Promise.all(runs);

    const failures: string[] = [];
    for (const r of results) {
      if (r.role === 'mutant') continue;
      if (r.asExpected) continue;
      const what = r.role === 'reachability' ? 'was not reached (the model may be vacuous)' : r.expect === 'holds' ? 'does not hold' : 'no longer fails';
      failures.push(`${label(r.role, r.variant)}: ${r.property} ${what}${r.problem ? ` (${r.problem})` : ''}`);
    }
    const mutantNames = [...new Set(selected.filter((v) => v.role === 'mutant').map((v) => v.name))];
    const mutants: MutantVerdict[] = mutantNames.map((mutant) => {
      const caughtBy = results.filter((r) => r.role === 'mutant' && r.variant === mutant && r.errors > 0).map((r) => r.property);
      return { mutant, caughtBy, caught: caughtBy.length > 0 };
    });
    for (const m of mutants) if (!m.caught) failures.push(`mutant ${m.mutant} was not caught by any property`);
    for (const r of results) if (r.role === 'mutant' && r.problem) failures.push(`mutant ${r.variant}: ${r.property}: ${r.problem}`);

    return { spinVersion: version, results, mutants, seconds: (performance.now() - started) / 1000, ok: failures.length === 0, failures };
  } finally {
    if (options.keep) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

const pad = (text: string, width: number): string => (text.length >= width ? text : text + ' '.repeat(width - text.length));
const padLeft = (text: string, width: number): string => (text.length >= width ? text : ' '.repeat(width - text.length) + text);
const count = (n: number): string => Math.round(n).toLocaleString('en-US');

function verdict(r: CheckResult): string {
  if (r.role === 'mutant') return r.errors > 0 ? 'CAUGHT' : 'not caught';
  if (r.role === 'reachability') return r.asExpected ? 'reached' : 'NOT REACHED';
  if (r.expect === 'violated') return r.asExpected ? 'fails (expected)' : 'HOLDS NOW';
  return r.asExpected ? 'holds' : 'FAILS';
}

/** The report as text: a table of searches, the mutants, the counterexamples. */
export function formatReport(report: ModelReport): string {
  const header = ['variant', 'property', 'search', 'faults', 'result', 'states stored', 'visited', 'transitions', 'depth', 'errors', 'seconds'];
  const rows = report.results.map((r) => [
    label(r.role, r.variant),
    r.property,
    r.search === 'liveness' ? 'liveness (-a -f)' : 'safety',
    String(r.faults),
    verdict(r),
    count(r.statesStored),
    count(r.statesVisited),
    count(r.transitions),
    String(r.depth),
    String(r.errors),
    r.seconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const numeric = new Set([3, 5, 6, 7, 8, 9, 10]);
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? padLeft(c, widths[i]) : pad(c, widths[i]))).join('  ');
  const out = [`${report.spinVersion}`, '', line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  for (const m of report.mutants) out.push(`mutant ${m.mutant}: ${m.caught ? `CAUGHT by ${m.caughtBy.join(', ')}` : 'NOT CAUGHT'}`);
  const shown = report.results.filter((r) => r.counterexample.length > 0);
  if (shown.length > 0) out.push('', 'counterexamples (the model narrates each step spin found):');
  for (const r of shown) out.push(`  ${label(r.role, r.variant)} / ${r.property}: ${r.counterexample.join('; ')}`);
  out.push('', `${report.ok ? 'OK' : 'FAILED'} in ${report.seconds.toFixed(1)} s`);
  for (const f of report.failures) out.push(`  - ${f}`);
  return out.join('\n');
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : undefined;
}

function numberOption(name: string): number | undefined {
  const value = option(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a whole number, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const only = option('only')?.split(',');
  const report = await runModelChecks({
    faults: numberOption('faults'),
    livenessFaults: numberOption('liveness-faults'),
    adminFaults: numberOption('admin-faults'),
    jobs: numberOption('jobs'),
    keep: process.argv.includes('--keep'),
    only,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  process.exitCode = report.ok ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  });
}
