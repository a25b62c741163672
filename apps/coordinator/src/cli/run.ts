import { AdminClient } from './admin-client.js';
import { parseCommandLine } from './arguments.js';
import { runAdminCommand } from './commands.js';
import { CliError, ExitCode } from './exit-codes.js';
import { generalHelp, topicHelp } from './help.js';
import { migrate, start } from './server-commands.js';

/** What the CLI reads and writes, so tests can run it in-process. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout(text: string): void;
  stderr(text: string): void;
  fetch?: typeof fetch;
}

/**
 * Runs one command line; resolves with the exit code. `start` resolves once the coordinator
 * listens, and the process then lives on with it.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const invocation = parseCommandLine(argv, io.env);
    switch (invocation.kind) {
      case 'help':
        io.stdout(`${invocation.topic ? topicHelp(invocation.topic) : generalHelp()}\n`);
        return ExitCode.OK;
      case 'start':
        await start();
        return ExitCode.OK;
      case 'migrate':
        await migrate(io.env, (line) => io.stdout(`${line}\n`));
        return ExitCode.OK;
      case 'admin': {
        const client = new AdminClient({ url: invocation.url, apiKey: io.env.DTX_API_KEY || undefined, fetch: io.fetch });
        io.stdout(`${await runAdminCommand(invocation.command, client, invocation.json)}\n`);
        return ExitCode.OK;
      }
    }
  } catch (error) {
    const failure = error instanceof CliError ? error : new CliError('INTERNAL', error instanceof Error ? error.message : String(error), ExitCode.FAILED);
    io.stderr(`nest-dtx: ${failure.code}: ${failure.message.split('\n')[0]}\n`);
    return failure.exitCode;
  }
}
