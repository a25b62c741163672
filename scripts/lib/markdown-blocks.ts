/**
 * The fenced code blocks of a markdown page, with the docs check's marker, if any, written as an
 * HTML comment (invisible once rendered) on the last non-blank line before the fence:
 *
 * - `<!-- docs-check: skip (why) -->`: a deliberate fragment, not compiled; the reason is required.
 * - `<!-- docs-check: file src/main.ts -->`: the block is that file of the app the page builds
 *   (docs/getting-started.md): the check compiles those files together, as a project, and the
 *   getting-started test runs them.
 */
import { readFileSync } from 'node:fs';

export type BlockMarker = { kind: 'none' } | { kind: 'skip'; reason: string } | { kind: 'file'; path: string };

export interface CodeBlock {
  /** The markdown file, as given. */
  file: string;
  /** The fence's info string's first word, lower-case (`ts`, `json`, `bash`...; '' when none). */
  language: string;
  /** 1-based line of the block's first content line in the markdown file. */
  firstLine: number;
  /** The content, with the fence's indentation (a block inside a list item) taken off. */
  code: string;
  marker: BlockMarker;
}

/** A marker that is not one of the two forms, or a skip without its reason. */
export class MarkerError extends Error {}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;
const MARKER = /^\s*<!--\s*docs-check:\s*(.*?)\s*-->\s*$/;

function parseMarker(text: string, where: string): BlockMarker {
  const skip = /^skip\s*\((.+)\)$/.exec(text);
  if (skip) return { kind: 'skip', reason: skip[1].trim() };
  const file = /^file\s+(\S+)$/.exec(text);
  if (file) return { kind: 'file', path: file[1] };
  throw new MarkerError(`${where}: a docs-check marker is "skip (reason)" or "file <path>", not "${text}"`);
}

/** A closing fence: only the opening fence's character, at least as many times. */
const isClosingFence = (trimmed: string, opening: string): boolean =>
  trimmed.length >= opening.length && [...trimmed].every((char) => char === opening[0]);

/** Every fenced block of `markdown` (the text of `file`). */
export function codeBlocks(file: string, markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  let lastNonBlank = -1;
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) {
      if (lines[i].trim() !== '') lastNonBlank = i;
      continue;
    }
    const [, indent, fence, info] = open;
    const content: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j];
      if (isClosingFence(line.trim(), fence)) break;
      content.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    const markerText = lastNonBlank >= 0 ? MARKER.exec(lines[lastNonBlank]) : null;
    blocks.push({
      file,
      language: info.toLowerCase(),
      firstLine: i + 2,
      code: content.join('\n'),
      marker: markerText ? parseMarker(markerText[1], `${file}:${lastNonBlank + 1}`) : { kind: 'none' },
    });
    i = j;
    lastNonBlank = j;
  }
  return blocks;
}

export const readCodeBlocks = (file: string, path: string = file): CodeBlock[] => codeBlocks(file, readFileSync(path, 'utf8'));

export const isTypeScript = (block: CodeBlock): boolean => block.language === 'ts' || block.language === 'typescript';

/**
 * The files a page builds (its `file` blocks), by path. Two blocks for one path are an error:
 * the page would say two things about one file.
 */
export function projectFiles(blocks: readonly CodeBlock[]): Map<string, CodeBlock> {
  const files = new Map<string, CodeBlock>();
  for (const block of blocks) {
    if (block.marker.kind !== 'file') continue;
    const earlier = files.get(block.marker.path);
    if (earlier) throw new MarkerError(`${block.file}:${block.firstLine - 1}: ${block.marker.path} is already the block at line ${earlier.firstLine - 1}`);
    files.set(block.marker.path, block);
  }
  return files;
}
