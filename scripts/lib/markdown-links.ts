/**
 * Links between the repository's pages: every relative link of a markdown page must name a file
 * that exists, and an `#anchor` a heading of that page, as GitHub makes heading anchors. So a
 * page moved or a heading renamed cannot leave a link pointing nowhere.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/** The lines of a page outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | null = null;
  markdown.split('\n').forEach((text, index) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text);
    if (marker) {
      if (fence === null) fence = marker[1];
      else if (text.trim().startsWith(fence) && text.trim().replace(/[`~]/g, '') === '') fence = null;
      return;
    }
    if (fence === null) lines.push({ line: index + 1, text });
  });
  return lines;
}

/** GitHub's anchor of a heading: its text lower-cased, markup and punctuation dropped, spaces as hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a page's headings, with GitHub's `-1`, `-2`... for repeats. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!heading) continue;
    const slug = headingSlug(heading[1]);
    const count = seen.get(slug) ?? 0;
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return anchors;
}

const LINK = /\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

/**
 * The broken relative links of `file` (relative to `root`), one line each: `file:line: why`.
 * Links out of the repository (`http:`, `https:`, `mailto:`) are not followed.
 */
export function brokenLinks(root: string, file: string): string[] {
  const problems: string[] = [];
  const markdown = readFileSync(join(root, file), 'utf8');
  for (const { line, text } of proseLines(markdown)) {
    const withoutCode = text.replace(/`[^`]*`/g, '');
    for (const match of withoutCode.matchAll(LINK)) {
      const target = match[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [path, anchor] = target.split('#', 2);
      const targetFile = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
      if (relative(root, join(root, targetFile)).startsWith('..') || !existsSync(join(root, targetFile))) {
        problems.push(`${file}:${line}: links to ${target}, and ${targetFile} does not exist`);
        continue;
      }
      if (anchor === undefined || anchor === '' || !targetFile.endsWith('.md')) continue;
      if (!headingAnchors(readFileSync(join(root, targetFile), 'utf8')).has(anchor)) {
        problems.push(`${file}:${line}: links to ${target}, and ${targetFile} has no heading with the anchor #${anchor}`);
      }
    }
  }
  return problems;
}
