import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the committed OpenAPI document lives: `openapi.json` beside dist/ in the installed
 * @nest-dtx/coordinator package (and beside src/ in apps/coordinator), `apps/coordinator/openapi.json`
 * from the repository root (a dist/ in a checkout, the Docker image).
 */
const CANDIDATES = ['openapi.json', join('apps', 'coordinator', 'openapi.json')];

/** Walks up from this module to the first folder holding the document, whether run from src (tests), a checkout's dist/, the package or the image. */
export function findOpenApiFile(start: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = start; ; dir = dirname(dir)) {
    for (const candidate of CANDIDATES) {
      const file = join(dir, candidate);
      if (existsSync(file) && (candidate !== 'openapi.json' || isCoordinatorPackage(dir))) return file;
    }
    if (dirname(dir) === dir) throw new Error(`cannot find the OpenAPI document (${CANDIDATES.join(' or ')}) above ${start}`);
  }
}

function isCoordinatorPackage(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === '@nest-dtx/coordinator';
  } catch {
    return false;
  }
}

/** The committed document's bytes, exactly as checked in. */
export function readOpenApiFile(): Buffer {
  return readFileSync(findOpenApiFile());
}
