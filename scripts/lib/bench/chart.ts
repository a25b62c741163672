/**
 * The bench chart, hand-written SVG: throughput and p99 latency against concurrency (log x
 * axis), one line per mode, the direct baseline of one mode dashed; for --instances runs,
 * against the number of instances instead. Rendered to PNG by headless Chromium when installed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUT_DIR } from './report.js';
import type { RunResult } from './runner.js';

const WIDTH = 1200;
const HEIGHT = 520;
const PANEL = { left: 80, right: 30, top: 56, bottom: 120 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const CHROMIUM = '/usr/bin/chromium';

interface Series {
  label: string;
  color: string;
  dashed: boolean;
  points: { x: number; y: number }[];
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round tick values from 0 to at least `max`. */
function niceTicks(max: number): number[] {
  const top = max > 0 ? max : 1;
  const raw = top / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = 0; v < top + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < top) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

/** 1-2-5 ticks spanning `min`..`max` (both > 0), for a log axis. */
function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let decade = 10 ** Math.floor(Math.log10(min)); decade <= max * 10; decade *= 10) {
    for (const m of [1, 2, 5]) ticks.push(Number((m * decade).toPrecision(6)));
  }
  const lo = ticks.filter((t) => t <= min).pop() ?? ticks[0];
  const hi = ticks.find((t) => t >= max) ?? ticks[ticks.length - 1];
  return ticks.filter((t) => t >= lo && t <= hi);
}

const formatTick = (v: number) => (v >= 10_000 ? `${v / 1000}k` : Number.isInteger(v) ? String(v) : v.toFixed(1));

/** A log y axis when the values span more than ten times (the direct baseline is often far above). */
function panel(x0: number, width: number, title: string, xLabel: string, yLabel: string, xs: number[], series: Series[]): string {
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => y > 0);
  const logY = ys.length > 0 && Math.max(...ys) / Math.min(...ys) > 10;
  const plotW = width - PANEL.left - PANEL.right;
  const plotH = HEIGHT - PANEL.top - PANEL.bottom;
  const left = x0 + PANEL.left;
  const minX = Math.log(Math.min(...xs));
  const maxX = Math.log(Math.max(...xs));
  const pad = maxX - minX > 0 ? (maxX - minX) * 0.06 : 0.7;
  const sx = (x: number) => left + ((Math.log(x) - (minX - pad)) / (maxX - minX + 2 * pad)) * plotW;
  const yTicks = logY ? logTicks(Math.min(...ys), Math.max(...ys)) : niceTicks(Math.max(0, ...ys));
  const yMin = logY ? yTicks[0] : 0;
  const yMax = yTicks[yTicks.length - 1];
  const sy = (y: number) =>
    logY
      ? PANEL.top + plotH - ((Math.log(Math.max(y, yMin)) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin))) * plotH
      : PANEL.top + plotH - (y / yMax) * plotH;
  const parts: string[] = [];
  parts.push(`<text x="${left + plotW / 2}" y="${PANEL.top - 22}" text-anchor="middle" font-size="18" font-weight="bold">${escape(title)}</text>`);
  for (const y of yTicks) {
    parts.push(`<line x1="${left}" y1="${sy(y)}" x2="${left + plotW}" y2="${sy(y)}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${left - 8}" y="${sy(y) + 4}" text-anchor="end" font-size="13">${formatTick(y)}</text>`);
  }
  for (const x of xs) {
    parts.push(`<line x1="${sx(x)}" y1="${PANEL.top}" x2="${sx(x)}" y2="${PANEL.top + plotH}" stroke="#f0f0f0"/>`);
    parts.push(`<line x1="${sx(x)}" y1="${PANEL.top + plotH}" x2="${sx(x)}" y2="${PANEL.top + plotH + 6}" stroke="#333"/>`);
    parts.push(`<text x="${sx(x)}" y="${PANEL.top + plotH + 22}" text-anchor="middle" font-size="13">${x}</text>`);
  }
  parts.push(`<rect x="${left}" y="${PANEL.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${PANEL.top + plotH + 44}" text-anchor="middle" font-size="14">${escape(xLabel)}</text>`);
  const yMid = PANEL.top + plotH / 2;
  parts.push(`<text x="${x0 + 20}" y="${yMid}" text-anchor="middle" font-size="14" transform="rotate(-90 ${x0 + 20} ${yMid})">${escape(logY ? `${yLabel} (log scale)` : yLabel)}</text>`);
  for (const s of series) {
    const points = [...s.points].sort((a, b) => a.x - b.x);
    const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="8 5"' : ''}/>`);
    for (const p of points) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3.5" fill="${s.dashed ? 'white' : s.color}" stroke="${s.color}" stroke-width="1.5"/>`);
  }
  return parts.join('\n');
}

function legend(series: Series[]): string {
  const parts: string[] = [];
  const perRow = 4;
  const cell = (WIDTH - 2 * PANEL.left) / perRow;
  series.forEach((s, i) => {
    const x = PANEL.left + (i % perRow) * cell;
    const y = HEIGHT - 44 + Math.floor(i / perRow) * 22;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 34}" y2="${y}" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="8 5"' : ''}/>`);
    parts.push(`<text x="${x + 42}" y="${y + 5}" font-size="14">${escape(s.label)}</text>`);
  });
  return parts.join('\n');
}

export function chartSvg(results: RunResult[], horizontal: boolean): string {
  const xOf = (r: RunResult) => (horizontal ? r.instances : r.concurrency);
  const keyOf = (r: RunResult) => (horizontal && new Set(results.map((x) => x.concurrency)).size > 1 ? `${r.mode} c=${r.concurrency}` : r.mode);
  const keys = [...new Set(results.map(keyOf))];
  const throughput: Series[] = keys.map((key, i) => ({
    label: key,
    color: COLORS[i % COLORS.length],
    dashed: false,
    points: results.filter((r) => keyOf(r) === key).map((r) => ({ x: xOf(r), y: r.txPerSecond })),
  }));
  const latency: Series[] = throughput.map((s) => ({ ...s, points: results.filter((r) => keyOf(r) === s.label).map((r) => ({ x: xOf(r), y: r.p99Ms })) }));
  const baselineKey = keys.includes('tcc') ? 'tcc' : keys[0];
  const baselineIndex = keys.indexOf(baselineKey);
  const baseline: Series = {
    label: `direct baseline of ${baselineKey}`,
    color: COLORS[baselineIndex % COLORS.length],
    dashed: true,
    points: results.filter((r) => keyOf(r) === baselineKey).map((r) => ({ x: xOf(r), y: r.direct.txPerSecond })),
  };
  const xs = [...new Set(results.map(xOf))].sort((a, b) => a - b);
  const xLabel = horizontal ? 'coordinator instances (log scale)' : 'concurrency: transactions in flight (log scale)';
  const half = WIDTH / 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    panel(0, half, 'Throughput', xLabel, 'committed transactions per second', xs, [...throughput, baseline]),
    panel(half, half, 'p99 latency of a whole transaction', xLabel, 'p99 latency (ms)', xs, latency),
    legend([...throughput, baseline]),
    '</svg>',
    '',
  ].join('\n');
}

function renderPng(svgPath: string, pngPath: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'bench-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    `--screenshot=${pngPath}`,
    `--window-size=${WIDTH},${HEIGHT}`,
    `file://${svgPath}`,
  ];
  return new Promise((resolve) => {
    execFile(CHROMIUM, args, { timeout: 60_000 }, (error) => {
      rmSync(profile, { recursive: true, force: true });
      resolve(error || !existsSync(pngPath) ? `png: not written (chromium failed: ${error?.message ?? 'no file'})` : `png: ${pngPath}`);
    });
  });
}

/** Writes bench.svg (and bench.png); returns the lines to print. */
export async function writeCharts(results: RunResult[], horizontal: boolean): Promise<string[]> {
  if (results.length === 0) return ['chart: no results'];
  mkdirSync(OUT_DIR, { recursive: true });
  const svgPath = join(OUT_DIR, 'bench.svg');
  const pngPath = join(OUT_DIR, 'bench.png');
  writeFileSync(svgPath, chartSvg(results, horizontal));
  rmSync(pngPath, { force: true });
  const png = existsSync(CHROMIUM) ? await renderPng(svgPath, pngPath) : `png: skipped, ${CHROMIUM} is not installed (apt-get install chromium provides it)`;
  return [`svg: ${svgPath}`, png];
}
