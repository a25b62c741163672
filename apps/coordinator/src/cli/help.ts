import { ADMIN_OPTIONS, COMMANDS, DEFAULT_COORDINATOR_URL, commandOptions, type CommandGroup, type CommandSpec } from './arguments.js';
import { ExitCode } from './exit-codes.js';

/** `nest-dtx --help`: every command, the environment and the exit codes. */
export function generalHelp(): string {
  const usage = (spec: CommandSpec) => [shortUsage(spec), spec.summary] as const;
  const server = COMMANDS.filter((c) => !c.admin).map(usage);
  const operations = COMMANDS.filter((c) => c.admin).map(usage);
  return [
    'nest-dtx: run and operate a nest-dtx coordinator',
    '',
    'Usage: nest-dtx <command> [arguments] [options]',
    '       nest-dtx help <command>        (or <command> --help; a group too: nest-dtx help tx)',
    '',
    'Running the coordinator (configured from its environment: PORT, HOST, DATABASE_URL, REDIS_URL, ...):',
    ...indent(columns(server)),
    '',
    'Operating it, through its admin API:',
    ...indent(columns(operations)),
    '',
    'Options of the operating commands:',
    ...indent(columns(optionLines(ADMIN_OPTIONS))),
    '',
    'Environment:',
    ...indent(
      columns([
        ['DTX_COORDINATOR_URL', `the coordinator when --url is not given (default ${DEFAULT_COORDINATOR_URL})`],
        ['DTX_API_KEY', 'an API key with the admin role, sent as a bearer token; never a flag, so it stays out of ps and shell history'],
      ]),
    ),
    '',
    'Exit codes:',
    ...indent(EXIT_CODES),
    '',
    'Errors go to stderr as one line: nest-dtx: <code>: <message>',
  ].join('\n');
}

/** `nest-dtx help <topic>` or `nest-dtx <topic> --help`: a command, or a group of them (`tx`). */
export function topicHelp(topic: CommandSpec | CommandGroup): string {
  return 'commands' in topic ? groupHelp(topic) : commandHelp(topic);
}

function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: nest-dtx ${usageLine(spec)}`, '', spec.summary + '.'];
  const options = optionLines(commandOptions(spec));
  lines.push('', 'Options:', ...indent(columns(options)));
  // `participants` is a command and the first word of others: say where those are.
  const related = COMMANDS.filter((c) => c.name.startsWith(`${spec.name} `));
  if (related.length > 0) lines.push('', 'See also:', ...indent(columns(related.map((c) => [shortUsage(c), c.summary]))));
  if (spec.admin) lines.push('', ADMIN_FOOTER);
  return lines.join('\n');
}

/** `nest-dtx help tx`: the group's commands, each with its arguments and what it does. */
function groupHelp(group: CommandGroup): string {
  const lines = [`Usage: nest-dtx ${group.name} <command> [arguments] [options]`, '', group.summary + '.', ''];
  lines.push('Commands:', ...indent(columns(group.commands.map((c) => [shortUsage(c), c.summary]))));
  lines.push('', `A command's own options: nest-dtx help ${group.name} <command>.`);
  if (group.commands.every((c) => c.admin)) lines.push(`Every ${group.name} command also takes --url URL and --json.`, ADMIN_FOOTER);
  return lines.join('\n');
}

const ADMIN_FOOTER = 'DTX_API_KEY: an admin API key (environment only). Exit codes: nest-dtx --help.';

const EXIT_CODES = columns([
  [String(ExitCode.OK), 'success'],
  [String(ExitCode.FAILED), 'start or migrate failed (bad configuration, database unreachable, a migration failed)'],
  [String(ExitCode.USAGE), 'usage error: unknown command or option, missing or malformed argument'],
  [String(ExitCode.NOT_FOUND), 'not found (404): no such transaction or participant'],
  [String(ExitCode.CREDENTIALS), 'credentials refused (401, 403): DTX_API_KEY missing, unknown, or not an admin key'],
  [String(ExitCode.REFUSED), 'request refused (other 4xx, e.g. 409 TX_ALREADY_DECIDED); the error code is printed'],
  [String(ExitCode.UNAVAILABLE), 'coordinator unreachable, timed out, or failing (5xx)'],
]);

function shortUsage(spec: CommandSpec): string {
  const own = Object.keys(spec.options).length > 0 ? ['[options]'] : [];
  return [spec.name, ...spec.args.map((a) => `<${a}>`), ...own].join(' ');
}

function usageLine(spec: CommandSpec): string {
  const args = spec.args.map((a) => `<${a}>`);
  const own = Object.entries(spec.options).map(([name, o]) => (o.type === 'string' ? `[--${name} ${o.value ?? 'VALUE'}]` : `[--${name}]`));
  return [spec.name, ...args, ...own, ...(spec.admin ? ['[--url URL] [--json]'] : [])].join(' ');
}

function optionLines(options: Readonly<Record<string, { type: string; short?: string; value?: string; description: string }>>): [string, string][] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [flag, o.description];
  });
}

/** Two columns, the first padded to its widest entry. */
function columns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${left.padEnd(width)}  ${right}`);
}

const indent = (lines: readonly string[]): string[] => lines.map((line) => `  ${line}`);
