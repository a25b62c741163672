import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Injectable, StreamableFile } from '@nestjs/common';
import { ErrorCode } from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';

/**
 * Where the console's static files live: `console/` beside dist/ in the installed
 * @nest-dtx/coordinator package, `apps/coordinator/console` from the repository root.
 */
const ASSETS_FOLDERS = ['console', join('apps', 'coordinator', 'console')];

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The console's files sit outside src/ because tsc copies nothing but compiled TypeScript to
 * dist/. Walking up from this module finds them whether it runs from the sources (tests), from
 * a dist/ in a checkout, from the installed package, or from the Docker image.
 */
export function findConsoleFolder(start: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = start; ; dir = dirname(dir)) {
    for (const folder of ASSETS_FOLDERS) {
      const candidate = join(dir, folder);
      if (existsSync(join(candidate, 'index.html')) && existsSync(join(candidate, 'console.js'))) return candidate;
    }
    if (dirname(dir) === dir) throw new Error(`cannot find the web console's files (${ASSETS_FOLDERS.join(' or ')}) above ${start}`);
  }
}

interface Asset {
  body: Buffer;
  type: string;
}

/**
 * The web console's static files, read once at start-up. Only the files found then are
 * served, by exact name, so a request can never reach anything else on disk.
 */
@Injectable()
export class ConsoleAssets {
  private readonly assets = new Map<string, Asset>();

  constructor() {
    const folder = findConsoleFolder();
    for (const name of readdirSync(folder)) {
      const type = CONTENT_TYPES[extname(name)];
      if (type) this.assets.set(name, { body: readFileSync(join(folder, name)), type });
    }
  }

  file(name: string): StreamableFile {
    const asset = this.assets.get(name);
    if (!asset) throw new ApiError(404, ErrorCode.NOT_FOUND, `no console file named ${name}`);
    return new StreamableFile(asset.body, { type: asset.type, length: asset.body.length });
  }
}
