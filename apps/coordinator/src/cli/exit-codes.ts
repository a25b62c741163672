/** What `nest-dtx` exits with, for scripts (documented in `nest-dtx --help` and docs/cli.md). */
export const ExitCode = {
  OK: 0,
  /** `start` or `migrate` failed: bad configuration, database unreachable, a migration failed. */
  FAILED: 1,
  /** Unknown command or option, missing or malformed argument. */
  USAGE: 2,
  /** 404: no such transaction or participant. */
  NOT_FOUND: 3,
  /** 401 or 403: the API key is missing, unknown, or lacks the admin role. */
  CREDENTIALS: 4,
  /** Any other 4xx, e.g. 409 when the transaction's state forbids the action. */
  REFUSED: 5,
  /** The coordinator could not be reached, timed out, or answered 5xx. */
  UNAVAILABLE: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line `nest-dtx: <code>: <message>` before exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error, pointing at the help that would have told (`help` words: `help tx`, default the general help). */
export const usageError = (message: string, help = '--help'): CliError => new CliError('USAGE', `${message} (see nest-dtx ${help})`, ExitCode.USAGE);

/** The exit code of an HTTP error status. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 404) return ExitCode.NOT_FOUND;
  if (status === 401 || status === 403) return ExitCode.CREDENTIALS;
  if (status >= 400 && status < 500) return ExitCode.REFUSED;
  return ExitCode.UNAVAILABLE;
}
