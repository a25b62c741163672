/**
 * The three packages as a team installs them: `npm pack` of the workspaces into a folder, the
 * versions of their neighbours (NestJS, TypeORM, pg...) as this repository uses them, an
 * install into an app folder outside the repository, and the processes of such an app.
 * Shared by the packaging test, the docs check (scripts/check-docs.ts) and the getting-started
 * test, so each installs the packages the same way.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './stack.js';

const run = promisify(execFile);

/** The workspaces that are published, in the order npm packs them (each depends on the ones before). */
export const PACKAGES = ['@nest-dtx/protocol', '@nest-dtx/sdk', '@nest-dtx/coordinator'] as const;
export type PackageName = (typeof PACKAGES)[number];

const WORKSPACE_DIR: Record<PackageName, string> = {
  '@nest-dtx/protocol': 'libs/protocol',
  '@nest-dtx/sdk': 'libs/sdk',
  '@nest-dtx/coordinator': 'apps/coordinator',
};

export const isPackageName = (name: string): name is PackageName => (PACKAGES as readonly string[]).includes(name);

/** The version a workspace's package.json gives, which is the one its tarball is named after. */
export function workspaceVersion(name: PackageName): string {
  return (JSON.parse(readFileSync(join(ROOT, WORKSPACE_DIR[name], 'package.json'), 'utf8')) as { version: string }).version;
}

/** Where `npm pack --pack-destination packDir` writes a package's tarball. */
export function tarballPath(packDir: string, name: PackageName): string {
  return join(packDir, `${name.slice(1).replace('/', '-')}-${workspaceVersion(name)}.tgz`);
}

/** A dependency spec that installs the packed tarball. */
export const tarballSpec = (packDir: string, name: PackageName): string => `file:${tarballPath(packDir, name)}`;

/**
 * Packs the given workspaces into `packDir`. npm runs each package's prepack script (its build)
 * first, in workspace order.
 */
export async function packWorkspaces(packDir: string, names: readonly PackageName[] = PACKAGES): Promise<void> {
  await run('npm', ['pack', '--silent', ...names.flatMap((name) => ['-w', name]), '--pack-destination', packDir], { cwd: ROOT, maxBuffer: 32 * 1024 * 1024 });
}

/** npm's `overrides`: a version (or `$name`, the root's own version of name) per package, nested per dependent. */
export type Overrides = { [name: string]: string | Overrides };

interface RootManifest {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  overrides?: Overrides;
}

export const ROOT_MANIFEST = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as RootManifest;

/** The ranges the root package.json gives for `names` (dependencies or devDependencies). */
export function rootVersions(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    names.map((name) => {
      const version = ROOT_MANIFEST.dependencies[name] ?? ROOT_MANIFEST.devDependencies[name];
      if (!version) throw new Error(`the root package.json has no version of ${name}`);
      return [name, version];
    }),
  );
}

let lockedPackages: Record<string, { version?: string }> | null = null;

/**
 * The exact version of `name` the root package-lock installs, or null when the repository does
 * not use it. Exact versions are in npm's cache after `npm ci`, so an install of them needs the
 * registry for nothing but what the cache lacks.
 */
export function lockedVersion(name: string): string | null {
  lockedPackages ??= (JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> }).packages;
  return lockedPackages[`node_modules/${name}`]?.version ?? null;
}

/** `npm install` in `dir` (its package.json), from npm's cache first; throws with npm's output when it fails. */
export async function npmInstall(dir: string): Promise<void> {
  try {
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, maxBuffer: 32 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm install in ${dir} failed:\n${stderr ?? ''}${stdout ?? ''}`.slice(0, 8000), { cause: error });
  }
}

/** A process of an installed app, in its own process group so `npx` and its child stop together. */
export class AppProcess {
  private readonly output: string[] = [];
  private readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    cwd: string,
    program: string,
    args: string[],
    env: Record<string, string>,
  ) {
    this.child = spawn(program, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.exited = new Promise((done) => this.child.once('exit', (code) => done(code)));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 4,000 characters it wrote (stdout and stderr). */
  get log(): string {
    return this.output.join('').slice(-4000);
  }

  /** SIGTERM to its group, SIGKILL after 10 s; resolves once it has exited. */
  async stop(): Promise<void> {
    if (!this.alive || this.child.pid === undefined) return;
    process.kill(-this.child.pid, 'SIGTERM');
    const forced = setTimeout(() => this.child.pid !== undefined && process.kill(-this.child.pid, 'SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(forced);
  }

  /** kill -9 of its whole group: no shutdown hook runs. Resolves once it has exited. */
  async killNine(): Promise<void> {
    if (!this.alive || this.child.pid === undefined) return;
    process.kill(-this.child.pid, 'SIGKILL');
    await this.exited;
  }
}
