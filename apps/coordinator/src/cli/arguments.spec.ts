import { describe, expect, it } from 'vitest';
import { GLOBAL_STATUSES, MODES } from '@nest-dtx/protocol';
import { DEFAULT_COORDINATOR_URL, parseCommandLine, type Invocation } from './arguments.js';
import { CliError, ExitCode } from './exit-codes.js';
import { generalHelp, topicHelp } from './help.js';

const parse = (line: string, env: Record<string, string> = {}): Invocation => parseCommandLine(line.split(' ').filter(Boolean), env);

/** The usage error a command line raises. */
function usage(line: string): string {
  try {
    parse(line);
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.USAGE);
    expect((error as CliError).code).toBe('USAGE');
    return (error as CliError).message;
  }
  throw new Error(`"${line}" parsed`);
}

describe('parseCommandLine: commands', () => {
  it('reads tx list with every filter, in any order', () => {
    expect(parse('tx list --status committed --mode tcc --participant bank --attention --limit 5 --cursor abc')).toEqual({
      kind: 'admin',
      command: { name: 'tx list', filters: { status: 'committed', mode: 'tcc', participant: 'bank', attention: true, limit: 5, cursor: 'abc' } },
      url: DEFAULT_COORDINATOR_URL,
      json: false,
    });
    expect(parse('--json tx --limit=7 list')).toMatchObject({ command: { name: 'tx list', filters: { limit: 7 } }, json: true });
    expect(parse('tx list')).toMatchObject({ command: { name: 'tx list', filters: {} } });
  });

  it('reads the gid commands', () => {
    for (const name of ['show', 'retry', 'rollback']) {
      expect(parse(`tx ${name} order:42`)).toMatchObject({ kind: 'admin', command: { name: `tx ${name}`, gid: 'order:42' } });
    }
  });

  it('reads the participants commands; `participants list` is `participants`', () => {
    expect(parse('participants')).toMatchObject({ command: { name: 'participants' } });
    expect(parse('participants list')).toMatchObject({ command: { name: 'participants' } });
    expect(parse('participants rotate-secret bank --overlap-seconds 0')).toMatchObject({
      command: { name: 'participants rotate-secret', participant: 'bank', overlapSeconds: 0 },
    });
    expect(parse('participants rotate-secret bank')).toEqual(expect.objectContaining({ command: { name: 'participants rotate-secret', participant: 'bank' } }));
    expect(parse('participants release bank')).toMatchObject({ command: { name: 'participants release', participant: 'bank' } });
  });

  it('reads locks with its filters', () => {
    expect(parse('locks --participant bank-a --limit 10 --cursor abc')).toEqual({
      kind: 'admin',
      command: { name: 'locks', filters: { participant: 'bank-a', limit: 10, cursor: 'abc' } },
      url: DEFAULT_COORDINATOR_URL,
      json: false,
    });
    expect(parse('locks --json')).toMatchObject({ command: { name: 'locks', filters: {} }, json: true });
    expect(usage('locks --limit ten')).toMatch(/^--limit must be a whole number, not "ten"/);
    expect(usage('locks --status active')).toMatch(/^locks: Unknown option '--status'/);
    expect(usage('locks everything')).toMatch(/^locks: unexpected argument "everything"/);
  });

  it('reads stats, start and migrate', () => {
    expect(parse('stats --json')).toMatchObject({ kind: 'admin', command: { name: 'stats' }, json: true });
    expect(parse('start')).toEqual({ kind: 'start' });
    expect(parse('migrate')).toEqual({ kind: 'migrate' });
  });
});

describe('parseCommandLine: the coordinator URL', () => {
  it('is --url, else DTX_COORDINATOR_URL, else the default; without a trailing slash', () => {
    expect(parse('stats --url https://dtx.example.com/', { DTX_COORDINATOR_URL: 'http://other:7070' })).toMatchObject({ url: 'https://dtx.example.com' });
    expect(parse('stats', { DTX_COORDINATOR_URL: 'http://other:7070/base' })).toMatchObject({ url: 'http://other:7070/base' });
    expect(parse('stats', { DTX_COORDINATOR_URL: '' })).toMatchObject({ url: DEFAULT_COORDINATOR_URL });
  });

  it('must be an http(s) URL', () => {
    expect(usage('stats --url nowhere')).toMatch(/^--url: "nowhere" is not a URL/);
    expect(usage('stats --url ftp://host')).toMatch(/is not an http:\/\/ or https:\/\/ URL/);
  });
});

describe('parseCommandLine: help', () => {
  it('is --help or -h anywhere, or help [command]', () => {
    expect(parse('--help')).toEqual({ kind: 'help', topic: null });
    expect(parse('help')).toEqual({ kind: 'help', topic: null });
    expect(parse('-h tx show')).toMatchObject({ kind: 'help', topic: { name: 'tx show' } });
    expect(parse('tx list --bogus --help')).toMatchObject({ kind: 'help', topic: { name: 'tx list' } });
    expect(parse('help participants rotate-secret')).toMatchObject({ kind: 'help', topic: { name: 'participants rotate-secret' } });
  });

  it('takes a group alone, as help tx or tx --help: its commands', () => {
    for (const line of ['help tx', 'tx --help', 'tx -h']) {
      expect(parse(line), line).toMatchObject({ kind: 'help', topic: { name: 'tx' } });
      const text = helpText(line);
      expect(text).toMatch(/^Usage: nest-dtx tx <command>/);
      for (const command of ['tx list [options]', 'tx show <gid>', 'tx retry <gid>', 'tx rollback <gid>']) expect(text).toContain(command);
    }
    expect(usage('help tx delete')).toMatch(/^unknown command "tx delete"; tx commands: list, show, retry, rollback \(see nest-dtx help tx\)$/);
    expect(generalHelp()).toContain('nest-dtx help tx');
  });

  it("names every mode and status the protocol has in tx list's options", () => {
    const text = helpText('tx list --help');
    const mode = /^ +--mode M +(.+)$/m.exec(text)?.[1];
    const status = /^ +--status S +(.+)$/m.exec(text)?.[1];
    expect(mode).toBe(`${MODES.slice(0, -1).join(', ')} or ${MODES.at(-1)}`);
    expect(mode).toContain('msg');
    for (const s of GLOBAL_STATUSES) expect(status).toContain(s);
  });

  it('lists the commands a command is the first word of', () => {
    expect(helpText('help participants')).toMatch(/^See also:\n {2}participants rotate-secret <name> \[options\] +Rotate/m);
    expect(helpText('help participants')).toMatch(/^ {2}participants release <name> +Release/m);
    expect(helpText('help tx show')).not.toContain('See also');
  });
});

/** What the CLI prints for a help command line. */
function helpText(line: string): string {
  const invocation = parse(line);
  if (invocation.kind !== 'help' || !invocation.topic) throw new Error(`"${line}" is no help on a topic`);
  return topicHelp(invocation.topic);
}

describe('parseCommandLine: usage errors (exit code 2)', () => {
  it('names the unknown command or option', () => {
    expect(usage('')).toMatch(/^no command given/);
    expect(usage('deploy')).toMatch(/^unknown command "deploy"/);
    expect(usage('tx')).toMatch(/^tx needs a command: list, show, retry, rollback/);
    expect(usage('tx delete x')).toMatch(/^unknown command "tx delete"/);
    expect(usage('tx list --bogus')).toMatch(/^tx list: Unknown option '--bogus'/);
    expect(usage('start --json')).toMatch(/^start: Unknown option '--json'/);
    expect(usage('tx show x --limit 3')).toMatch(/^tx show: Unknown option '--limit'/);
    expect(usage('help deploy')).toMatch(/^unknown command "deploy"/);
  });

  it('names the missing or extra argument', () => {
    expect(usage('tx show')).toMatch(/^tx show: missing <gid>/);
    expect(usage('participants release')).toMatch(/^participants release: missing <name>/);
    expect(usage('tx show a b')).toMatch(/^tx show: unexpected argument "b"/);
    expect(usage('stats now')).toMatch(/^stats: unexpected argument "now"/);
  });

  it('refuses malformed numbers and option values left out', () => {
    expect(usage('tx list --limit ten')).toMatch(/^--limit must be a whole number, not "ten"/);
    expect(usage('tx list --limit -1')).toMatch(/--limit/);
    expect(usage('participants rotate-secret bank --overlap-seconds 1.5')).toMatch(/^--overlap-seconds must be a whole number/);
    expect(usage('tx list --status')).toMatch(/^tx list: Option '--status <value>' argument missing/);
  });

  it('points at --help, or at the help of the command or group', () => {
    expect(usage('deploy')).toMatch(/\(see nest-dtx --help\)$/);
    expect(usage('tx')).toMatch(/\(see nest-dtx help tx\)$/);
    expect(usage('tx show')).toMatch(/\(see nest-dtx help tx show\)$/);
    expect(usage('tx list --bogus')).toMatch(/\(see nest-dtx help tx list\)$/);
  });
});
