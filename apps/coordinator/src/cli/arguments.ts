import { parseArgs } from 'node:util';
import { GLOBAL_STATUSES, MODES } from '@nest-dtx/protocol';
import { usageError } from './exit-codes.js';

/** Where the admin commands go when neither --url nor DTX_COORDINATOR_URL says. */
export const DEFAULT_COORDINATOR_URL = 'http://127.0.0.1:7070';

/** Filters of `tx list`, as the admin API takes them (PROTOCOL.md 6). */
export interface ListFilters {
  status?: string;
  mode?: string;
  participant?: string;
  attention?: boolean;
  limit?: number;
  cursor?: string;
}

/** Filters of `locks`, as GET /admin/locks takes them. */
export interface LockFilters {
  participant?: string;
  limit?: number;
  cursor?: string;
}

/** A command that talks to the admin API. */
export type AdminCommand =
  | { name: 'tx list'; filters: ListFilters }
  | { name: 'locks'; filters: LockFilters }
  | { name: 'tx show' | 'tx retry' | 'tx rollback'; gid: string }
  | { name: 'participants' }
  | { name: 'participants rotate-secret'; participant: string; overlapSeconds?: number }
  | { name: 'participants release'; participant: string }
  | { name: 'stats' };

/** What a command line asks for; help's topic is a command, a group of them (`tx`), or everything (null). */
export type Invocation =
  | { kind: 'help'; topic: CommandSpec | CommandGroup | null }
  | { kind: 'start' }
  | { kind: 'migrate' }
  | { kind: 'admin'; command: AdminCommand; url: string; json: boolean };

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder of the value in the help. */
  value?: string;
  description: string;
}

type RawOptions = Record<string, string | boolean | undefined>;

export interface CommandSpec {
  /** The words that name it: `tx list`, `participants rotate-secret`. */
  name: string;
  /** Its positional arguments, in order. */
  args: readonly string[];
  summary: string;
  /** Options of its own (the admin commands also take --url and --json). */
  options: Readonly<Record<string, OptionSpec>>;
  admin: boolean;
  /** Builds the invocation once the words, arguments and options are known to be well-formed. */
  build(args: readonly string[], options: RawOptions, url: string, json: boolean): Invocation;
}

export const HELP_OPTION: Readonly<Record<string, OptionSpec>> = { help: { type: 'boolean', short: 'h', description: 'show help' } };

export const ADMIN_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  url: { type: 'string', value: 'URL', description: `the coordinator (default: $DTX_COORDINATOR_URL, else ${DEFAULT_COORDINATOR_URL})` },
  json: { type: 'boolean', description: "print the API's JSON answer unchanged" },
};

/**
 * A word that names no command alone but introduces several (`tx list`, `tx show`...): its
 * help lists them.
 */
export interface CommandGroup {
  name: string;
  summary: string;
  commands: readonly CommandSpec[];
}

/** `a, b or c`, for the values an option takes. */
const alternatives = (values: readonly string[]): string => (values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`);

const admin = (command: AdminCommand, url: string, json: boolean): Invocation => ({ kind: 'admin', command, url, json });

const gidCommand = (name: 'tx show' | 'tx retry' | 'tx rollback', summary: string): CommandSpec => ({
  name,
  args: ['gid'],
  summary,
  options: {},
  admin: true,
  build: ([gid], _options, url, json) => admin({ name, gid }, url, json),
});

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'start',
    args: [],
    summary: 'Run the coordinator in this process, configured from the environment',
    options: {},
    admin: false,
    build: () => ({ kind: 'start' }),
  },
  {
    name: 'migrate',
    args: [],
    summary: 'Run the pending database migrations (under the migration lock), then exit',
    options: {},
    admin: false,
    build: () => ({ kind: 'migrate' }),
  },
  {
    name: 'tx list',
    args: [],
    summary: 'List transactions, newest first',
    options: {
      // From the protocol's own lists, so a new mode or status shows here as soon as the API takes it.
      status: { type: 'string', value: 'S', description: alternatives(GLOBAL_STATUSES) },
      mode: { type: 'string', value: 'M', description: alternatives(MODES) },
      participant: { type: 'string', value: 'P', description: 'only transactions with a branch on this participant' },
      attention: { type: 'boolean', description: 'only transactions flagged for attention' },
      limit: { type: 'string', value: 'N', description: 'page size (the API allows 1 to 200)' },
      cursor: { type: 'string', value: 'C', description: "the next page (the previous page's next cursor)" },
    },
    admin: true,
    build: (_args, options, url, json) =>
      admin(
        {
          name: 'tx list',
          filters: dropUndefined({
            status: text(options.status),
            mode: text(options.mode),
            participant: text(options.participant),
            attention: options.attention === true ? true : undefined,
            limit: wholeNumber('--limit', options.limit),
            cursor: text(options.cursor),
          }),
        },
        url,
        json,
      ),
  },
  gidCommand('tx show', 'A transaction, its branches and its full history'),
  gidCommand('tx retry', 'Deliver phase 2 (or a waiting saga step) now'),
  gidCommand('tx rollback', 'Force the rollback of an active transaction (reason admin)'),
  {
    name: 'participants',
    args: [],
    summary: 'List the registered participants with their owner key and secret generation',
    options: {},
    admin: true,
    build: (_args, _options, url, json) => admin({ name: 'participants' }, url, json),
  },
  {
    name: 'participants rotate-secret',
    args: ['name'],
    summary: "Rotate a participant's signing secret (prints the new one)",
    options: {
      'overlap-seconds': { type: 'string', value: 'N', description: 'keep signing with the previous secret too for N seconds (default 3600; 0 revokes it now)' },
    },
    admin: true,
    build: ([participant], options, url, json) =>
      admin(dropUndefined({ name: 'participants rotate-secret' as const, participant, overlapSeconds: wholeNumber('--overlap-seconds', options['overlap-seconds']) }), url, json),
  },
  {
    name: 'participants release',
    args: ['name'],
    summary: 'Release a participant name from its API key (revokes its secret)',
    options: {},
    admin: true,
    build: ([participant], _options, url, json) => admin({ name: 'participants release', participant }, url, json),
  },
  {
    name: 'locks',
    args: [],
    summary: 'List the row locks AT transactions hold now, held longest first',
    options: {
      participant: { type: 'string', value: 'P', description: 'only the locks of branches on this participant' },
      limit: { type: 'string', value: 'N', description: 'page size (the API allows 1 to 200)' },
      cursor: { type: 'string', value: 'C', description: "the next page (the previous page's next cursor)" },
    },
    admin: true,
    build: (_args, options, url, json) =>
      admin(
        {
          name: 'locks',
          filters: dropUndefined({ participant: text(options.participant), limit: wholeNumber('--limit', options.limit), cursor: text(options.cursor) }),
        },
        url,
        json,
      ),
  },
  {
    name: 'stats',
    args: [],
    summary: 'Count transactions by status and mode',
    options: {},
    admin: true,
    build: (_args, _options, url, json) => admin({ name: 'stats' }, url, json),
  },
];

/** Words that name no command alone but introduce some: `tx`. */
export const GROUPS: readonly CommandGroup[] = [
  { name: 'tx', summary: 'Look at transactions, and retry or roll back one', commands: COMMANDS.filter((c) => c.name.startsWith('tx ')) },
];
/** `participants list` is `participants`. */
const ALIASES = new Map<string, string>([['participants list', 'participants']]);

/**
 * Reads a command line (without `node` and the script). Throws a usage CliError for anything
 * unknown, missing or malformed; `env` supplies DTX_COORDINATOR_URL.
 */
export function parseCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Invocation {
  // A lenient first pass, knowing every option, finds the command words among the arguments.
  const first = parseArgs({ args: [...argv], options: parseArgsOptions(allOptions()), allowPositionals: true, strict: false });
  const words = first.positionals;
  if (words[0] === 'help') return { kind: 'help', topic: words.length > 1 ? helpTopic(words.slice(1)) : null };
  if (words.length === 0) {
    if (first.values.help === true) return { kind: 'help', topic: null };
    throw usageError('no command given');
  }
  if (first.values.help === true) return { kind: 'help', topic: helpTopic(words) };
  const { spec, rest } = findCommand(words);
  // The strict pass knows only this command's options.
  const known = commandOptions(spec);
  let values: RawOptions;
  try {
    values = parseArgs({ args: [...argv], options: parseArgsOptions(known), allowPositionals: true, strict: true }).values;
  } catch (error) {
    throw usageError(`${spec.name}: ${firstSentence(error)}`, `help ${spec.name}`);
  }
  if (rest.length < spec.args.length) throw usageError(`${spec.name}: missing <${spec.args[rest.length]}>`, `help ${spec.name}`);
  if (rest.length > spec.args.length) throw usageError(`${spec.name}: unexpected argument "${rest[spec.args.length]}"`, `help ${spec.name}`);
  const url = spec.admin ? coordinatorUrl(text(values.url) ?? nonEmpty(env.DTX_COORDINATOR_URL) ?? DEFAULT_COORDINATOR_URL) : '';
  return spec.build(rest, values, url, values.json === true);
}

/** Every option `spec` accepts, --help included. */
export function commandOptions(spec: CommandSpec): Record<string, OptionSpec> {
  return { ...spec.options, ...(spec.admin ? ADMIN_OPTIONS : {}), ...HELP_OPTION };
}

/** What `help <words>` or `<words> --help` is about: a group named alone, else the command the words name. */
function helpTopic(words: readonly string[]): CommandSpec | CommandGroup {
  const group = GROUPS.find((g) => g.name === words[0]);
  return group && words.length === 1 ? group : findCommand(words).spec;
}

/** The command the leading words name, and the words after them (its arguments). */
function findCommand(words: readonly string[]): { spec: CommandSpec; rest: string[] } {
  const two = words.slice(0, 2).join(' ');
  const byTwo = COMMANDS.find((c) => c.name === (ALIASES.get(two) ?? two));
  if (byTwo && words.length >= 2) return { spec: byTwo, rest: words.slice(2) };
  const group = GROUPS.find((g) => g.name === words[0]);
  if (group) {
    const names = group.commands.map((c) => c.name.slice(group.name.length + 1)).join(', ');
    const problem = words.length < 2 ? `${group.name} needs a command: ${names}` : `unknown command "${two}"; ${group.name} commands: ${names}`;
    throw usageError(problem, `help ${group.name}`);
  }
  const byOne = COMMANDS.find((c) => c.name === words[0]);
  if (byOne) return { spec: byOne, rest: words.slice(1) };
  throw usageError(`unknown command "${words[0]}"`);
}

function allOptions(): Record<string, OptionSpec> {
  return Object.assign({}, ...COMMANDS.map(commandOptions)) as Record<string, OptionSpec>;
}

function parseArgsOptions(options: Record<string, OptionSpec>): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  return Object.fromEntries(Object.entries(options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]));
}

function coordinatorUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`--url: "${value}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--url: "${value}" is not an http:// or https:// URL`);
  return value.replace(/\/+$/, '');
}

function wholeNumber(flag: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) throw usageError(`${flag} must be a whole number, not "${String(value)}"`);
  return Number(value);
}

const text = (value: string | boolean | undefined): string | undefined => (typeof value === 'string' ? value : undefined);
const nonEmpty = (value: string | undefined): string | undefined => (value ? value : undefined);

/** node:util's parse errors are several sentences; the first says what is wrong. */
function firstSentence(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(/\.\s/)[0].replace(/\.$/, '');
}

/** Leaves out the undefined members, so the invocation shows only what the command line said. */
function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
