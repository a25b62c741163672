/**
 * Plain-text layout for people: aligned tables and label/value blocks. No colours and no
 * terminal width guessing, so the output reads the same in a pipe, a log and a terminal.
 */

/**
 * Columns separated by two spaces, each as wide as its widest cell; no trailing spaces.
 * `notes[i]`: lines printed under row i, indented, for text too long for a cell (an error):
 * they take no column width, so the columns stay narrow and the text stays whole.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], notes: readonly (readonly string[] | undefined)[] = []): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    widths
      .map((width, i) => (cells[i] ?? '').padEnd(width))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.flatMap((row, i) => [line(row), ...(notes[i] ?? []).map((note) => `  ${note}`)])].join('\n');
}

/**
 * `label: text` as whole lines, never cut: a text of several lines (a stack trace) keeps them,
 * the later ones indented under the first. A JSON value other than a string is shown as JSON
 * on one line. No lines for null.
 */
export function labelled(label: string, value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const [first, ...rest] = text.trimEnd().split(/\r?\n/).map((l) => l.trimEnd());
  const hang = ' '.repeat(label.length + 2);
  return [`${label}: ${first}`.trimEnd(), ...rest.map((l) => (l ? `${hang}${l}` : ''))];
}

/** `label:  value` lines, the values aligned. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([label]) => label.length + 1));
  return pairs.map(([label, value]) => `${`${label}:`.padEnd(width)}  ${value}`.trimEnd()).join('\n');
}

/** An ISO-8601 instant as `2026-12-01 16:50:38Z` (UTC, to the second); '-' for none. */
export function instant(iso: string | null | undefined): string {
  if (!iso) return '-';
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
  return match ? `${match[1]} ${match[2]}Z` : iso;
}

/** A JSON value on one line ('' for null), cut to `max` characters with an ellipsis. */
export function compactJson(value: unknown, max = 60): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return truncate(text.replace(/\s+/g, ' '), max);
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

export const orDash = (value: string | number | null | undefined): string => (value === null || value === undefined || value === '' ? '-' : String(value));

/** Milliseconds as people read a wait: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 10 min`, `3 d 04 h`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${two(seconds % 60)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ${two(minutes % 60)} min`;
  const hours = Math.floor(minutes / 60);
  return `${Math.floor(hours / 24)} d ${two(hours % 24)} h`;
}
