// Builds DOM nodes from data without ever parsing it as HTML: text goes in as text nodes and
// attributes through setAttribute, so a gid or an error message cannot inject markup.

/**
 * h('a', { href: '#/', class: 'x', dataset: { gid } , onclick }, 'text', child, [more]) -> element.
 * Children may be strings, numbers, nodes, arrays of them, or null/false (skipped).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `parent`. */
export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

/**
 * The UTC offset of this browser's zone at `date` (daylight saving moves it): Z for none, else
 * +05:30 or -04:00. Every time shown carries it: an operator comparing the console with logs
 * (the CLI prints UTC with a Z) must not have to guess whose clock a time is on.
 */
export function zoneOffset(date) {
  const minutes = -date.getTimezoneOffset();
  if (minutes === 0) return 'Z';
  const abs = Math.abs(minutes);
  return `${minutes > 0 ? '+' : '-'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** The zone as a label next to inputs in local time: UTC, UTC+05:30. */
export function zoneName(date = new Date()) {
  const offset = zoneOffset(date);
  return offset === 'Z' ? 'UTC' : `UTC${offset}`;
}

/** Local date and time, to the second, with the zone: 2026-11-23 08:22:31+01:00. */
export function formatDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${zoneOffset(d)}`;
}

/** Local time with milliseconds and the zone, for the timeline: 08:22:31.042+01:00. */
export function formatTime(iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${zoneOffset(d)}`;
}

/** A JSON value as short readable text (strings as they are). */
export function describeJson(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof value.message === 'string') return value.message;
  return JSON.stringify(value);
}

/** A time held, as people read it: 850 ms, 12.3 s, 4 min 05 s, 2 h 10 min, 3 d 04 h. */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${pad(seconds % 60)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
  const hours = Math.floor(minutes / 60);
  return `${Math.floor(hours / 24)} d ${pad(hours % 24)} h`;
}
