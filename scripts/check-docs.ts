/**
 * `npm run docs:check [-- --packs <dir>] [--keep] [file.md ...]`: compiles every TypeScript block
 * of the README, the packages' READMEs and docs/ against the packed packages
 * (scripts/lib/docs-check.ts says how). Prints how many blocks compiled and which were skipped
 * and why, each failure at its markdown line, and exits non-zero on a failure.
 *
 * `--packs <dir>` reuses tarballs already packed there (`npm pack -w ... --pack-destination <dir>`),
 * `--keep` leaves the work folder for a look at what was compiled; naming files checks only those.
 */
import { checkDocs, formatReport } from './lib/docs-check.js';
import { textOption } from './lib/run-options.js';

const packDir = textOption('packs', '');
const files = process.argv.slice(2).filter((arg, index, args) => arg.endsWith('.md') && args[index - 1] !== '--packs');

const report = await checkDocs({
  ...(packDir ? { packDir } : {}),
  ...(files.length > 0 ? { files } : {}),
  keep: process.argv.includes('--keep'),
  log: (line) => process.stdout.write(`${line}\n`),
});
process.stdout.write(`${formatReport(report)}\n`);
process.exitCode = report.failures.length === 0 ? 0 : 1;
