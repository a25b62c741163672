/** The command line of `npm run bench` (scripts/bench.ts describes every option). */

export const ALL_MODES = ['saga', 'saga-wait', 'tcc', 'tcc-interactive', '2pc-interactive', 'xa', 'at', 'msg', 'msg-submit', 'workflow'] as const;
export type ModeName = (typeof ALL_MODES)[number];
/** Modes that need the account services' XA or AT actions: only with `--participants sdk`. */
export const SDK_ONLY_MODES: readonly ModeName[] = ['xa', 'at'];

export type ParticipantKind = 'plain' | 'sdk';

export interface BenchOptions {
  participants: ParticipantKind;
  modes: ModeName[];
  concurrencies: number[];
  /** Transactions per run; null: the default per concurrency (see `transactionsFor`). */
  transactions: number | null;
  warmup: number;
  /** Measure pg_stat_database.xact_commit in every run (it costs 22 s a run). */
  xactCommits: boolean;
  /** Coordinator instance counts for the horizontal runs; null: the concurrency sweep. */
  instances: number[] | null;
  /** Tracing on at this sampling ratio (0 to 1), exported to a sink; null: off, the default. */
  traceSampling: number | null;
}

export const DEFAULT_CONCURRENCIES = [1, 8, 32, 128];
/** Runs that measure xact_commit by default (the 11 s stats flush makes it costly). */
export const DEFAULT_XACT_RUNS: { mode: ModeName; concurrency: number }[] = [
  { mode: 'tcc', concurrency: 1 },
  { mode: 'tcc', concurrency: 32 },
];

export const transactionsFor = (options: BenchOptions, concurrency: number): number =>
  options.transactions ?? (concurrency === 1 ? 400 : 2000);

function value(argv: string[], name: string): string | null {
  const index = argv.indexOf(`--${name}`);
  if (index < 0) return null;
  const next = argv[index + 1];
  if (next === undefined || next.startsWith('--')) throw new Error(`--${name} needs a value`);
  return next;
}

function positiveInts(name: string, text: string): number[] {
  const list = text.split(',').map((part) => Number(part.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name}: expected positive integers separated by commas, got ${text}`);
  return list;
}

const KNOWN = new Set(['participants', 'modes', 'concurrency', 'transactions', 'warmup', 'xact-commits', 'instances', 'trace-sampling', 'help']);

export function parseOptions(argv: string[]): BenchOptions {
  for (const arg of argv) {
    if (arg.startsWith('--') && !KNOWN.has(arg.slice(2))) throw new Error(`unknown option ${arg}`);
  }
  const participants = value(argv, 'participants') ?? 'plain';
  if (participants !== 'plain' && participants !== 'sdk') throw new Error(`--participants: plain or sdk, got ${participants}`);
  const instancesText = value(argv, 'instances');
  const instances = instancesText === null ? null : positiveInts('instances', instancesText);

  const modesText = value(argv, 'modes');
  const defaultModes: ModeName[] = instances
    ? ['tcc', 'saga']
    : ALL_MODES.filter((mode) => participants === 'sdk' || !SDK_ONLY_MODES.includes(mode));
  const modes = modesText === null ? defaultModes : modesText.split(',').map((m) => m.trim());
  for (const mode of modes) {
    if (!(ALL_MODES as readonly string[]).includes(mode)) throw new Error(`--modes: unknown mode ${mode} (known: ${ALL_MODES.join(', ')})`);
    if (SDK_ONLY_MODES.includes(mode as ModeName) && participants !== 'sdk') throw new Error(`mode ${mode} needs --participants sdk`);
  }

  const concurrencyText = value(argv, 'concurrency');
  const concurrencies = concurrencyText === null ? (instances ? [32] : DEFAULT_CONCURRENCIES) : positiveInts('concurrency', concurrencyText);
  const transactionsText = value(argv, 'transactions');
  const warmupText = value(argv, 'warmup');
  const samplingText = value(argv, 'trace-sampling');
  const traceSampling = samplingText === null ? null : Number(samplingText);
  if (traceSampling !== null && !(traceSampling >= 0 && traceSampling <= 1)) throw new Error(`--trace-sampling: a ratio from 0 to 1, got ${samplingText}`);
  return {
    participants,
    modes: modes as ModeName[],
    concurrencies: [...new Set(concurrencies)].sort((a, b) => a - b),
    transactions: transactionsText === null ? null : positiveInts('transactions', transactionsText)[0],
    warmup: warmupText === null ? 1000 : Number(warmupText),
    xactCommits: argv.includes('--xact-commits'),
    instances,
    traceSampling,
  };
}
