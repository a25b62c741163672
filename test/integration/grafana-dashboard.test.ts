/**
 * deploy/grafana/nest-dtx-coordinator.json against what the coordinator really exports: every
 * metric a panel (or a template variable) queries is one that GET /metrics of a real
 * MetricsService serves, over HTTP, with its in-doubt gauges read from a migrated Postgres.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorConfig, loadCoordinatorEnv } from '../../apps/coordinator/src/config/coordinator.config.js';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/database.module.js';
import { MetricsController } from '../../apps/coordinator/src/metrics/metrics.controller.js';
import { MetricsService } from '../../apps/coordinator/src/metrics/metrics.service.js';
import { ParticipantGates } from '../../apps/coordinator/src/overload/participant-gates.service.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

const DASHBOARD = join(import.meta.dirname, '../../deploy/grafana/nest-dtx-coordinator.json');

interface Target {
  refId: string;
  expr: string;
  exemplar?: boolean;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  uid: string;
  __inputs: { name: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string; definition: string }[] };
}

/** PromQL's functions and aggregations are called with `(`; what else can stand bare without being a metric. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads: the identifiers left once strings, label
 * matchers (`{...}`), ranges (`[5m]`), offsets, groupings (`by (...)`, `on (...)`...), Grafana's
 * variables and numbers are taken out, less those called as functions and the keywords.
 */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_]\w*/g, ' ')
    .replace(/\boffset\s+-?(\d+(ms|[smhdwy]))+/gi, ' ')
    .replace(/(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const following = bare.slice(match.index + match[0].length).trimStart();
    if (following.startsWith('(') || KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** The metric of a Grafana `label_values(metric, label)` variable query (its label is no metric). */
function metricOfVariable(definition: string): string[] {
  const labelValues = /^label_values\(\s*(.+?)\s*,\s*\w+\s*\)$/.exec(definition.trim());
  return labelValues ? metricNamesIn(labelValues[1]) : metricNamesIn(definition);
}

/** Every series name a scrape shows, and a histogram's `_bucket`, `_sum` and `_count` even before it has observations. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)$/.exec(line);
    if (type) {
      names.add(type[1]);
      if (type[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(type[1] + suffix);
    } else if (line && !line.startsWith('#')) {
      names.add(/^[A-Za-z_:][\w:]*/.exec(line)![0]);
    }
  }
  return names;
}

const panelsOf = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);

let db: TestDatabase;
let dataSource: DataSource;
let app: INestApplication;
let url: string;

beforeAll(async () => {
  db = await createTestDatabase('grafana');
  dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: COORDINATOR_MIGRATIONS });
  await dataSource.initialize();
  await dataSource.runMigrations();
  const config = new CoordinatorConfig(loadCoordinatorEnv({}));
  const moduleRef = await Test.createTestingModule({
    controllers: [MetricsController],
    providers: [MetricsService, ParticipantGates, { provide: CoordinatorConfig, useValue: config }, { provide: getDataSourceToken(), useValue: dataSource }],
  }).compile();
  // A participant with a gate and a call, so that the per-participant series have samples.
  moduleRef.get(ParticipantGates).gate('bank');
  moduleRef.get(MetricsService).observeCall({ participant: 'bank', phase: 'try', outcome: 'ok' }, 0.02);
  app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const address = (app.getHttpServer() as { address(): { port: number } }).address();
  url = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await app?.close();
  await dataSource?.destroy();
  await db?.drop();
});

describe('metricNamesIn', () => {
  it('finds the metric names of an expression, not its functions, keywords, labels, ranges or variables', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (le, participant) (rate(dtx_phase_call_duration_seconds_bucket{instance=~"$instance", participant=~"a{b}"}[$__rate_interval])))',
      ),
    ).toEqual(['dtx_phase_call_duration_seconds_bucket']);
    expect(metricNamesIn('max(dtx_recovery_lag_seconds) / on (instance) group_left up offset 5m > 1e3')).toEqual(['dtx_recovery_lag_seconds', 'up']);
    expect(metricNamesIn('sum without (reason) (rate(a_total[5m])) and b_total')).toEqual(['a_total', 'b_total']);
  });
});

describe('deploy/grafana/nest-dtx-coordinator.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const panels = panelsOf(dashboard.panels).filter((p) => p.type !== 'row');

  it('is a dashboard to import, its data source an input, with panels that have targets', () => {
    expect(dashboard.uid).toBe('nest-dtx-coordinator');
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' })]);
    expect(panels.length).toBeGreaterThanOrEqual(10);
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) expect(target.expr.trim(), panel.title).not.toBe('');
    }
    // The latency panel shows the exemplars that link a bucket to a trace.
    const latency = panels.find((p) => p.targets!.some((t) => t.expr.includes('histogram_quantile') && t.expr.includes('dtx_phase_call_duration_seconds_bucket')));
    expect(latency?.targets?.every((t) => t.exemplar === true)).toBe(true);
  });

  it('queries only metrics a real MetricsService exports at GET /metrics', async () => {
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    const exported = exportedNames(await response.text());
    expect(exported).toContain('dtx_phase_call_duration_seconds_bucket');

    const queried = new Map<string, string>();
    for (const panel of panels) for (const target of panel.targets!) for (const name of metricNamesIn(target.expr)) queried.set(name, `panel "${panel.title}"`);
    for (const variable of dashboard.templating.list) for (const name of metricOfVariable(variable.definition)) queried.set(name, `variable ${variable.name}`);
    const missing = [...queried].filter(([name]) => !exported.has(name)).map(([name, where]) => `${name} (${where})`);
    expect(missing).toEqual([]);
    // Every family of the brief is on the dashboard.
    for (const name of [
      'dtx_transactions_begun_total',
      'dtx_transactions_finished_total',
      'dtx_phase_call_duration_seconds_bucket',
      'dtx_phase2_retries_total',
      'dtx_transactions_needing_attention',
      'dtx_transactions_in_doubt',
      'dtx_recovery_lag_seconds',
      'dtx_recovery_deferred_total',
      'dtx_participant_in_flight',
      'dtx_participant_queued',
      'dtx_participant_limit',
      'dtx_participant_calls_not_made_total',
      'dtx_admission_total',
      'dtx_participant_breaker_open',
    ]) {
      expect(queried.has(name), name).toBe(true);
    }
  });
});

describe('GET /metrics formats', () => {
  it('answers the Prometheus text format by default and OpenMetrics to a scraper that asks, varying on Accept', async () => {
    const plain = await fetch(`${url}/metrics`);
    expect(plain.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(plain.headers.get('vary')?.toLowerCase()).toContain('accept');
    const open = await fetch(`${url}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
    expect(open.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const body = await open.text();
    expect(body.endsWith('# EOF\n')).toBe(true);
    expect(body).toContain('dtx_transactions_in_doubt{status="active"} 0');
  });
});
