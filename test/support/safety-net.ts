/**
 * The safety net of the integration and end-to-end tests (a setup file of those projects): after
 * each test file, after the file's own afterAll hooks, whatever the file started and did not stop
 * is stopped, and whatever it created and did not drop is dropped. A file whose beforeAll failed
 * half-way has handles to only part of what it started (a helper that threw took the rest with
 * it), and an afterAll that throws early skips its later lines; without this, each such file
 * left coordinators, banks and databases behind for the rest of the run and the next ones.
 *
 * What it reports it found is a leak of the file (or of its failed set-up), printed so that the
 * file can be fixed; it fails nothing itself.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll } from 'vitest';
import { getHooks, setHooks } from 'vitest/suite';
import { stopRunningProcesses } from '../../scripts/lib/stack.js';
import { dropLeftoverDatabases } from './databases.js';

interface ProcEntry {
  pid: number;
  parent: number;
  /** Exited, not yet reaped by its parent: nothing left to stop. */
  zombie: boolean;
}

function readProc(pid: number): ProcEntry | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, parent: Number(parent), zombie: state === 'Z' || state === 'X' };
  } catch {
    return null;
  }
}

/** The live processes below this one (the test file's worker): what the file spawned, and what those spawned. */
function descendants(): ProcEntry[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((entry): entry is ProcEntry => entry !== null);
  const found: ProcEntry[] = [];
  const parents = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const entry of all) {
      if (!parents.has(entry.parent) || parents.has(entry.pid)) continue;
      parents.add(entry.pid);
      found.push(entry);
      grew = true;
    }
  }
  return found.filter((entry) => !entry.zombie);
}

const commandOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 120) || `pid ${pid}`;
  } catch {
    return `pid ${pid}`;
  }
};

/** Still running, and still the same process (same parent): a pid freed meanwhile may be reused. */
const running = ({ pid, parent }: ProcEntry): boolean => {
  const now = readProc(pid);
  return now !== null && !now.zombie && now.parent === parent;
};

const signal = (pid: number, name: NodeJS.Signals): void => {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
};

/**
 * Stops the processes still running below this one that were spawned some other way than
 * scripts/lib/stack.ts's ManagedProcess (a CLI run, a browser, a package's app): SIGTERM, and
 * SIGKILL to what still runs 5 s later. Resolves with their command lines.
 */
async function stopDescendants(): Promise<string[]> {
  const left = descendants();
  const commands = left.map((entry) => commandOf(entry.pid));
  for (const entry of left) {
    signal(entry.pid, 'SIGCONT');
    signal(entry.pid, 'SIGTERM');
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && left.some(running)) await sleep(100);
  for (const entry of left) if (running(entry)) signal(entry.pid, 'SIGKILL');
  return commands;
}

/** Stops and drops what the file left, and says so. */
async function catchLeftovers(file: string): Promise<void> {
  const processes = await stopRunningProcesses();
  const others = await stopDescendants();
  const { dropped, failed } = await dropLeftoverDatabases();
  const found = [
    ...(processes.length > 0 ? [`stopped ${processes.join(', ')}`] : []),
    ...(others.length > 0 ? [`stopped ${others.join('; ')}`] : []),
    ...(dropped.length > 0 ? [`dropped ${dropped.join(', ')}`] : []),
    ...(failed.length > 0 ? [`could not drop ${failed.join(', ')}`] : []),
  ];
  if (found.length > 0) console.warn(`safety net, after ${file}: ${found.join('; ')}`);
}

/**
 * Vitest runs a file's afterAll hooks one after the other and stops at the first that throws
 * (an afterAll that reads what a failed beforeAll never set): an afterAll of our own, run last,
 * would be skipped exactly when it is needed. So, once the file's hooks are all registered
 * (this beforeAll runs before the file's own), they are put behind one hook that runs them as
 * Vitest would (last registered first: the `stack` order of sequence.hooks, the default) and
 * then, whatever they did, catches the leftovers.
 */
beforeAll((file) => {
  const hooks = getHooks(file);
  const fileHooks = [...hooks.afterAll].reverse();
  setHooks(file, {
    ...hooks,
    afterAll: [
      async (suite) => {
        try {
          for (const hook of fileHooks) await hook(suite);
        } finally {
          // Its own failure is reported, not thrown: it would hide the file's.
          await catchLeftovers(file.name).catch((error: unknown) => console.warn(`safety net, after ${file.name}: ${String(error)}`));
        }
      },
    ],
  });
});
