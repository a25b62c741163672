/**
 * Docs that compile: every ```ts block of the README, the packages' READMEs and docs/ is
 * type-checked against the packed packages, as a reader who installed them from npm would
 * compile it. The blocks are written to a folder outside the repository, each to its own
 * module, next to the tarballs and the libraries the blocks import (at the versions this
 * repository's package-lock has, so npm's cache serves them); `tsc --noEmit` runs over them
 * with a strict tsconfig, and each error is reported at the markdown line it comes from.
 *
 * A page that builds an app (docs/getting-started.md) marks its files (`docs-check: file`):
 * those compile together, with the page's own tsconfig.json. A deliberate fragment is marked
 * `docs-check: skip (reason)` and counted. The same pages' relative links must reach a file that
 * exists, and their anchors a heading of it (markdown-links.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { isTypeScript, projectFiles, readCodeBlocks, type CodeBlock } from './markdown-blocks.js';
import { brokenLinks } from './markdown-links.js';
import { PACKAGES, ROOT_MANIFEST, isPackageName, lockedVersion, npmInstall, packWorkspaces, tarballSpec, type Overrides } from './packed-packages.js';
import { ROOT } from './stack.js';

const run = promisify(execFile);

/** The pages whose blocks are checked, relative to the repository root. */
export function documentationFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => `docs/${file}`)
    .sort();
  return ['README.md', 'libs/sdk/README.md', 'libs/protocol/README.md', 'apps/coordinator/README.md', ...docs];
}

/**
 * What every block is compiled with: what the docs promise a reader's tsconfig needs (strict,
 * Node's module resolution, Node's types, the decorators NestJS uses). Each block is a module
 * of its own (`moduleDetection: force`), so two blocks may declare the same name; the folder
 * is ESM, so a block may use top-level await.
 */
export const BLOCK_COMPILER_OPTIONS = {
  strict: true,
  target: 'ES2023',
  lib: ['ES2023'],
  module: 'nodenext',
  moduleResolution: 'nodenext',
  types: ['node'],
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  esModuleInterop: true,
  skipLibCheck: true,
  moduleDetection: 'force',
  noEmit: true,
} as const;

/** The options a page's own tsconfig.json must have too, so its app is held to the same rules. */
const REQUIRED_PROJECT_OPTIONS: Record<string, (value: unknown) => boolean> = {
  strict: (value) => value === true,
  module: (value) => typeof value === 'string' && value.toLowerCase() === 'nodenext',
  types: (value) => Array.isArray(value) && value.includes('node'),
  experimentalDecorators: (value) => value === true,
  emitDecoratorMetadata: (value) => value === true,
};

export interface SkippedBlock {
  where: string;
  reason: string;
}

export interface DocsCheckReport {
  /** Markdown files read. */
  files: string[];
  /** TypeScript blocks compiled: on their own, and as the files of a page's app. */
  compiled: number;
  compiledAsProjectFiles: number;
  skipped: SkippedBlock[];
  /** One line each: `file.md:line: message`. */
  failures: string[];
}

export interface DocsCheckOptions {
  /** Markdown files relative to the root (default: documentationFiles()). */
  files?: string[];
  /** A folder that already holds the packed tarballs (skips `npm pack`). */
  packDir?: string;
  /** Leave the work folder in place (its path is logged). */
  keep?: boolean;
  log?: (line: string) => void;
}

const where = (block: CodeBlock, line = 0): string => `${block.file}:${block.firstLine + line}`;

/** The package an import specifier names (`@scope/name` or `name`), or null for relative paths and Node's own modules. */
export function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || isBuiltin(specifier)) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"\n]+)['"]/g;

/** The packages a block imports. */
export function importedPackages(code: string): string[] {
  const names = new Set<string>();
  for (const match of code.matchAll(IMPORT)) {
    const name = packageOf(match[1]);
    if (name) names.add(name);
  }
  return [...names];
}

/** `@types/pg` for `pg`, `@types/foo__bar` for `@foo/bar`. */
const typesPackageOf = (name: string): string => `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;

/**
 * The repository's npm overrides (TypeORM 1 declares ioredis 5 as an optional peer, and the
 * repository uses ioredis 6) for the check's install: a `$name` reference names a dependency
 * of the root project, which here is the version installed, or dropped when the blocks do not
 * use that package.
 */
function resolvedOverrides(overrides: Overrides, dependencies: Record<string, string>): Overrides {
  const resolved: Overrides = {};
  for (const [name, value] of Object.entries(overrides)) {
    if (typeof value !== 'string') {
      resolved[name] = resolvedOverrides(value, dependencies);
      continue;
    }
    const target = value.startsWith('$') ? dependencies[value.slice(1)] : value;
    if (target !== undefined) resolved[name] = target;
  }
  return resolved;
}

/**
 * @nestjs/terminus names @mikro-orm/nestjs as an optional peer. npm resolves an optional peer's
 * version even when nothing installs it, and on Node 22.17+ it picks @mikro-orm/nestjs 7, whose
 * peer @mikro-orm/core 7 conflicts with the MikroORM 6 the repository (and its docs) use:
 * ERESOLVE. On Node 20 npm skipped that version for its engines, which hid this. A reader gets
 * the same error, and data-layers.md gives them this same override.
 */
function optionalPeerPins(dependencies: Record<string, string>): Overrides {
  const mikroOrm = Object.entries(dependencies).find(([name]) => name.startsWith('@mikro-orm/'))?.[1];
  if (!mikroOrm || !dependencies['@nestjs/terminus'] || !mikroOrm.startsWith('6.')) return {};
  return { '@mikro-orm/nestjs': '^6.1.0' };
}

interface TscError {
  file: string;
  line: number;
  text: string;
}

/** tsc's plain output (`--pretty false`): `file(line,col): error TSnnnn: message`, continuation lines indented. */
function parseTscOutput(output: string): TscError[] {
  const errors: TscError[] = [];
  for (const line of output.split('\n')) {
    const head = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    if (head) errors.push({ file: head[1], line: Number(head[2]), text: head[4] });
    else if (line.trim() && errors.length > 0 && /^\s/.test(line)) errors[errors.length - 1].text += `\n    ${line.trim()}`;
    else if (line.trim()) errors.push({ file: '', line: 0, text: line.trim() });
  }
  return errors;
}

async function tsc(workDir: string, project: string): Promise<TscError[]> {
  const compiler = join(workDir, 'node_modules/typescript/bin/tsc');
  try {
    await run(process.execPath, [compiler, '-p', project, '--noEmit', '--pretty', 'false'], { cwd: workDir, maxBuffer: 32 * 1024 * 1024 });
    return [];
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    const errors = parseTscOutput(`${stdout ?? ''}${stderr ?? ''}`);
    return errors.length > 0 ? errors : [{ file: '', line: 0, text: String(error) }];
  }
}

const slugOf = (file: string): string => file.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');

/** Checks the blocks; never throws for a block that does not compile (that is a failure in the report). */
export async function checkDocs(options: DocsCheckOptions = {}): Promise<DocsCheckReport> {
  const log = options.log ?? (() => undefined);
  const files = options.files ?? documentationFiles();
  const report: DocsCheckReport = { files, compiled: 0, compiledAsProjectFiles: 0, skipped: [], failures: [] };

  const standalone: CodeBlock[] = [];
  const projects = new Map<string, Map<string, CodeBlock>>();
  for (const file of files) {
    report.failures.push(...brokenLinks(ROOT, file));
    let blocks: CodeBlock[];
    let pageFiles: Map<string, CodeBlock>;
    try {
      blocks = readCodeBlocks(file, join(ROOT, file));
      pageFiles = projectFiles(blocks);
    } catch (error) {
      report.failures.push(error instanceof Error ? error.message : String(error));
      continue;
    }
    for (const block of blocks) {
      if (block.marker.kind === 'skip') {
        if (!isTypeScript(block)) report.failures.push(`${where(block, -1)}: a skip marker on a ${block.language || 'plain'} block, which is never compiled`);
        else report.skipped.push({ where: where(block, -1), reason: block.marker.reason });
      } else if (block.marker.kind === 'none' && isTypeScript(block)) standalone.push(block);
    }
    if (pageFiles.size > 0) projects.set(file, pageFiles);
  }

  const projectTypeScript = [...projects.values()].flatMap((pageFiles) => [...pageFiles.entries()].filter(([path]) => path.endsWith('.ts')).map(([, block]) => block));
  const needed = new Set(['typescript', '@types/node', '@nest-dtx/protocol', '@nest-dtx/sdk']);
  for (const block of [...standalone, ...projectTypeScript]) for (const name of importedPackages(block.code)) needed.add(name);
  for (const pageFiles of projects.values()) {
    const manifest = pageFiles.get('package.json');
    if (!manifest) continue;
    const declared = JSON.parse(manifest.code) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
    for (const name of Object.keys({ ...declared.dependencies, ...declared.devDependencies })) needed.add(name);
  }

  const workDir = mkdtempSync(join(tmpdir(), 'dtx-docs-check-'));
  try {
    const packDir = options.packDir ?? join(workDir, 'packs');
    if (!options.packDir) {
      log(`packing ${PACKAGES.join(', ')}`);
      mkdirSync(packDir);
      await packWorkspaces(packDir);
    }
    const dependencies: Record<string, string> = {};
    for (const name of [...needed].sort()) {
      if (isPackageName(name)) {
        dependencies[name] = tarballSpec(packDir, name);
        continue;
      }
      const version = lockedVersion(name);
      if (!version) {
        const users = [...standalone, ...projectTypeScript].filter((block) => importedPackages(block.code).includes(name)).map((block) => where(block, -1));
        report.failures.push(`${users.join(', ') || 'a page\'s package.json'}: imports ${name}, which this repository does not use (the check installs only the versions its package-lock has)`);
        continue;
      }
      dependencies[name] = version;
      const types = typesPackageOf(name);
      const typesVersion = lockedVersion(types);
      if (typesVersion) dependencies[types] = typesVersion;
    }
    const overrides = { ...resolvedOverrides(ROOT_MANIFEST.overrides ?? {}, dependencies), ...optionalPeerPins(dependencies) };
    writeFileSync(join(workDir, 'package.json'), JSON.stringify({ name: 'dtx-docs-check', private: true, type: 'module', dependencies, overrides }, null, 2));
    log(`installing ${Object.keys(dependencies).length} packages into ${workDir}`);
    await npmInstall(workDir);

    // The blocks on their own, each a module of one folder, in one compiler run.
    const blockFiles = new Map<string, CodeBlock>();
    mkdirSync(join(workDir, 'blocks'));
    for (const block of standalone) {
      const name = `blocks/${slugOf(block.file)}_L${block.firstLine - 1}.ts`;
      writeFileSync(join(workDir, name), `${block.code}\n`);
      blockFiles.set(name, block);
    }
    writeFileSync(join(workDir, 'tsconfig.json'), JSON.stringify({ compilerOptions: BLOCK_COMPILER_OPTIONS, include: ['blocks/*.ts'] }, null, 2));
    if (standalone.length > 0) {
      log(`compiling ${standalone.length} blocks`);
      for (const error of await tsc(workDir, 'tsconfig.json')) {
        const block = blockFiles.get(error.file);
        report.failures.push(block ? `${where(block, error.line - 1)}: ${error.text}` : `${error.file}(${error.line}): ${error.text}`);
      }
    }
    report.compiled += standalone.length;

    // Each page's app, with its own tsconfig.json, in a folder below the installed packages.
    for (const [page, pageFiles] of projects) {
      const projectDir = join(workDir, 'projects', slugOf(page));
      const tsconfig = pageFiles.get('tsconfig.json');
      if (!tsconfig) {
        report.failures.push(`${page}: its files (docs-check: file) have no tsconfig.json to compile them with`);
        continue;
      }
      const compilerOptions = (JSON.parse(tsconfig.code) as { compilerOptions?: Record<string, unknown> }).compilerOptions ?? {};
      for (const [option, holds] of Object.entries(REQUIRED_PROJECT_OPTIONS)) {
        if (!holds(compilerOptions[option])) report.failures.push(`${where(tsconfig)}: compilerOptions.${option} is ${JSON.stringify(compilerOptions[option])}, which the docs check requires otherwise`);
      }
      for (const [path, block] of pageFiles) {
        mkdirSync(dirname(join(projectDir, path)), { recursive: true });
        writeFileSync(join(projectDir, path), `${block.code}\n`);
      }
      const typeScriptFiles = [...pageFiles.keys()].filter((path) => path.endsWith('.ts'));
      log(`compiling the ${typeScriptFiles.length} files of ${page}`);
      for (const error of await tsc(workDir, relative(workDir, join(projectDir, 'tsconfig.json')))) {
        const path = error.file ? relative(projectDir, join(workDir, error.file)) : '';
        const block = pageFiles.get(path);
        report.failures.push(block ? `${where(block, error.line - 1)} (${path}): ${error.text}` : `${page}, ${error.file || 'tsc'}(${error.line}): ${error.text}`);
      }
      report.compiled += typeScriptFiles.length;
      report.compiledAsProjectFiles += typeScriptFiles.length;
    }
    return report;
  } finally {
    if (options.keep) log(`work folder kept: ${workDir}`);
    else if (existsSync(workDir)) rmSync(workDir, { recursive: true, force: true });
  }
}

/** The report as the command prints it. */
export function formatReport(report: DocsCheckReport): string {
  const lines = [
    `docs check: ${report.files.length} markdown files; ${report.compiled} TypeScript blocks compiled` +
      (report.compiledAsProjectFiles > 0 ? ` (${report.compiledAsProjectFiles} of them as the files of an app)` : '') +
      `, ${report.skipped.length} skipped`,
    ...report.skipped.map((skip) => `  skipped ${skip.where}: ${skip.reason}`),
    ...report.failures.map((failure) => `FAILED ${failure}`),
    report.failures.length === 0 ? 'OK' : `${report.failures.length} failure(s)`,
  ];
  return lines.join('\n');
}
