/**
 * apps/coordinator/openapi.json is the one source of the API's description: committed, served
 * byte for byte at /docs-json, shipped in the package. These checks keep it honest:
 * - `npm run openapi` (write-openapi.js, from dist/) regenerates exactly the committed bytes.
 *   This runs under the versions package-lock.json pins (CI installs with `npm ci`): another
 *   @nestjs/swagger may write other bytes, which is why the served file is the committed one
 *   and not a document generated at run time. After changing a controller, DTO or view:
 *   `npm run openapi` and commit the file.
 * - Spectral with the OpenAPI and OWASP rule sets (.spectral.yaml) finds no error.
 * - The document's security tells operators' routes from the others, as ApiKeyGuard does.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/stack.js';

const run = promisify(execFile);
const COMMITTED = join(ROOT, 'apps/coordinator/openapi.json');
const scratch = mkdtempSync(join(tmpdir(), 'dtx-openapi-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Operations = Record<string, Record<string, { security?: Record<string, string[]>[] }>>;

describe('apps/coordinator/openapi.json', () => {
  it('is what the code generates, byte for byte (run `npm run openapi` after changing the API)', async () => {
    const regenerated = join(scratch, 'openapi.json');
    await run(process.execPath, [join(ROOT, 'dist/apps/coordinator/src/docs/write-openapi.js'), regenerated], { cwd: ROOT });
    expect(readFileSync(regenerated).equals(readFileSync(COMMITTED)), 'the committed document is stale: run `npm run openapi`').toBe(true);
  }, 60_000);

  it('passes spectral (spectral:oas and the OWASP API security rules) without an error', async () => {
    const spectral = join(ROOT, 'node_modules/.bin/spectral');
    const result = await run(spectral, ['lint', 'apps/coordinator/openapi.json', '--ruleset', '.spectral.yaml', '--fail-severity', 'error', '--format', 'json'], {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: { stdout?: string; code?: number }) => ({ stdout: error.stdout ?? '', failed: error.code }));
    const problems = JSON.parse(result.stdout.slice(result.stdout.indexOf('['))) as { severity: number; code: string; path: string[] }[];
    expect(problems.filter((p) => p.severity === 0).map((p) => `${p.code} ${p.path.join('.')}`)).toEqual([]);
    expect('failed' in result).toBe(false);
  }, 120_000);

  it('secures every route but the health probes, and lists adminKey only where admin alone may call', () => {
    const document = JSON.parse(readFileSync(COMMITTED, 'utf8')) as { openapi: string; paths: Operations; components: { securitySchemes: Record<string, unknown> } };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(['adminKey', 'clientKey', 'metricsKey', 'participantKey']);
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const schemes = (operation.security ?? []).flatMap((requirement) => Object.keys(requirement));
        const where = `${method.toUpperCase()} ${path}`;
        if (path.startsWith('/health/')) expect(operation.security, where).toEqual([]);
        else if (/^\/(admin|docs)/.test(path)) expect(schemes, where).toEqual(['adminKey']);
        else if (path === '/metrics') expect(schemes, where).toEqual(['metricsKey']);
        else expect(schemes.length > 0 && !schemes.includes('adminKey'), where).toBe(true);
      }
    }
  });
});
