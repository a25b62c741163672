/**
 * The jepsen suite's hold on the machine: running its commands (ip, tc, pg_ctlcluster), marking
 * every process it starts, and removing what an interrupted run left (processes, network
 * namespaces, Postgres clusters) by their ids. Nothing here touches what the suite did not make.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';

/** Every process the suite starts carries this variable (value: the run's id); leftovers are found by it. */
export const RUN_MARKER = 'DTX_JEPSEN_RUN';
/** The prefix of the suite's network namespaces. */
export const NS_PREFIX = 'dtxj-';
/** The suite's own Postgres clusters (Debian's postgresql-common) start with this name. */
export const CLUSTER_PREFIX = 'dtxjepsen';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (at most `timeoutMs`); never throws for its exit code. */
export function run(program: string, args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(program, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs a command and throws with its output when it fails. */
export async function must(program: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const result = await run(program, args, timeoutMs);
  if (result.code !== 0) throw new Error(`${program} ${args.join(' ')}: exit ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 500)}`);
  return result.stdout;
}

/** Whether a program is on the PATH (or at the given path). */
export function haveProgram(name: string): boolean {
  if (name.startsWith('/')) return existsSync(name);
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => existsSync(`${dir}/${name}`));
}

/** The processes whose environment carries the suite's marker (any run's, or `runId`'s), but never this process. */
export function markedProcesses(runId?: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.some((v) => (runId ? v === `${RUN_MARKER}=${runId}` : v.startsWith(`${RUN_MARKER}=`)))) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not readable: not ours to look at.
    }
  }
  return found;
}

/** SIGKILLs the given processes (by id) and waits until they are gone (at most 5 s). */
export async function killPids(pids: readonly number[]): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && pids.some((pid) => existsSync(`/proc/${pid}`) && !isZombie(pid))) await new Promise((r) => setTimeout(r, 50));
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The suite's network namespaces that exist now. */
export async function suiteNamespaces(): Promise<string[]> {
  if (!haveProgram('ip')) return [];
  const out = await run('ip', ['netns', 'list']);
  return out.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0])
    .filter((name) => name !== undefined && name.startsWith(NS_PREFIX));
}

/** Deletes network namespaces, after killing (by id) every process still in them. */
export async function deleteNamespaces(names: readonly string[]): Promise<void> {
  for (const ns of names) {
    const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
    await killPids(pids);
    await run('ip', ['netns', 'del', ns]);
  }
}

/** The suite's Postgres clusters (name, version) that exist now. */
export async function suiteClusters(): Promise<{ version: string; name: string }[]> {
  if (!haveProgram('pg_lsclusters')) return [];
  const out = await run('pg_lsclusters', ['--no-header']);
  return out.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 2 && cols[1].startsWith(CLUSTER_PREFIX))
    .map((cols) => ({ version: cols[0], name: cols[1] }));
}

/** Stops (immediate) and drops a cluster of the suite's. */
export async function dropCluster(version: string, name: string): Promise<void> {
  if (!name.startsWith(CLUSTER_PREFIX)) throw new Error(`refusing to drop ${name}: not one of the suite's clusters`);
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, 'stop', '-m', 'immediate'], 30_000);
  await run('pg_dropcluster', [version, name], 60_000);
  // pg_dropcluster leaves the configuration directory when it holds files of the suite's own (conf.d/jepsen.conf).
  rmSync(`/etc/postgresql/${version}/${name}`, { recursive: true, force: true });
}

/** Configuration directories of the suite's clusters that no longer exist (a drop that left them). */
function strayConfigDirs(): { version: string; name: string }[] {
  if (!existsSync('/etc/postgresql')) return [];
  return readdirSync('/etc/postgresql').flatMap((version) =>
    existsSync(`/etc/postgresql/${version}`) ? readdirSync(`/etc/postgresql/${version}`).filter((name) => name.startsWith(CLUSTER_PREFIX)).map((name) => ({ version, name })) : [],
  );
}

/** Removes whatever an earlier run left: its processes, namespaces and clusters. */
export async function removeLeftovers(log: (line: string) => void = () => undefined): Promise<void> {
  const pids = markedProcesses();
  if (pids.length > 0) log(`killing ${pids.length} process(es) an earlier run left: ${pids.join(', ')}`);
  await killPids(pids);
  const namespaces = await suiteNamespaces();
  if (namespaces.length > 0) log(`deleting network namespaces an earlier run left: ${namespaces.join(', ')}`);
  await deleteNamespaces(namespaces);
  for (const cluster of await suiteClusters()) {
    log(`dropping Postgres cluster ${cluster.version}/${cluster.name} an earlier run left`);
    await dropCluster(cluster.version, cluster.name);
  }
  for (const dir of strayConfigDirs()) rmSync(`/etc/postgresql/${dir.version}/${dir.name}`, { recursive: true, force: true });
}
