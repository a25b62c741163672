/**
 * Observability of a real coordinator process: its OpenAPI document and Swagger UI, and its
 * logs (one JSON object per line on stdout, gid and branchId as fields on lines about a transaction).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransactionClient } from '@nest-dtx/sdk';
import { accountService, coordinator, openAccount, postJson, until, type CoordinatorHandle, type ServiceHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

interface SchemaObject {
  $ref?: string;
  allOf?: SchemaObject[];
  enum?: string[];
  type?: string;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  items?: SchemaObject;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { tags?: string[]; security?: Record<string, string[]>[]; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, SchemaObject>; securitySchemes?: Record<string, { type: string; scheme?: string }> };
}

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;

beforeAll(async () => {
  databases = await Promise.all(['obs_coord', 'obs_bank'].map((p) => createTestDatabase(p)));
  // debug: the level at which every participant call and decision is logged.
  coord = await coordinator('obs-coordinator', databases[0].url, { LOG_LEVEL: 'debug' });
  // The log file is appended to across runs: start from an empty one so every line is this run's.
  rmSync(coord.process.logFile, { force: true });
  await coord.start();
  bank = await accountService('obs-bank', databases[1].url, coord.url);
  await bank.start();
  await openAccount(bank, 'olivia', 1_000);
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('OpenAPI document at /docs-json', () => {
  let document: OpenApiDocument;
  const resolve = (schema: SchemaObject): SchemaObject => {
    const ref = schema.$ref ?? schema.allOf?.[0]?.$ref;
    return ref ? document.components.schemas[ref.replace('#/components/schemas/', '')] : schema;
  };

  beforeAll(async () => {
    const response = await fetch(`${coord.url}/docs-json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as OpenApiDocument;
  });

  it('lists every route of PROTOCOL.md 3, 4 and 6 with its method', () => {
    const routes = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes).toEqual(
      expect.arrayContaining([
        'POST /v1/transactions',
        'POST /v1/transactions/{gid}/branches',
        'POST /v1/transactions/{gid}/commit',
        'POST /v1/transactions/{gid}/rollback',
        'GET /v1/transactions/{gid}',
        'POST /v1/participants',
        'GET /v1/participants',
        'GET /admin/transactions',
        'GET /admin/transactions/{gid}',
        'POST /admin/transactions/{gid}/retry',
        'POST /admin/transactions/{gid}/rollback',
        'GET /admin/stats',
      ]),
    );
  });

  it('describes the begin body from its DTO: mode is one of tcc, 2pc, saga, msg, workflow, and every field of PROTOCOL.md 3.1 is there', () => {
    const begin = document.paths['/v1/transactions'].post as unknown as { requestBody: { content: Record<string, { schema: SchemaObject }> } };
    const body = resolve(begin.requestBody.content['application/json'].schema);
    expect(Object.keys(body.properties ?? {}).sort()).toEqual(
      ['branches', 'check', 'concurrent', 'gid', 'input', 'metadata', 'mode', 'steps', 'submit', 'timeoutMs', 'wait', 'workflow'].sort(),
    );
    expect(body.required).toEqual(['mode']);
    expect(resolve(body.properties!.mode).enum).toEqual(['tcc', '2pc', 'saga', 'msg', 'workflow']);
    expect(Object.keys(resolve(body.properties!.check).properties ?? {}).sort()).toEqual(['action', 'participant']);
    const branch = resolve(body.properties!.branches.items!);
    expect(Object.keys(branch.properties ?? {}).sort()).toEqual(['action', 'branchId', 'participant', 'payload']);
    const step = resolve(body.properties!.steps.items!);
    expect(Object.keys(step.properties ?? {}).sort()).toEqual(['action', 'dependsOn', 'name', 'participant', 'payload']);
  });

  it('documents answers with the view and error bodies, and declares a Bearer scheme per role', () => {
    const get = document.paths['/v1/transactions/{gid}'].get;
    expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404', '429', '500', '503']));
    const errorBody = document.components.schemas.ErrorBody;
    expect(Object.keys(errorBody.properties ?? {})).toEqual(expect.arrayContaining(['statusCode', 'error', 'message']));
    expect(resolve(errorBody.properties!.error).enum).toContain('TX_NOT_FOUND');
    expect(Object.keys(document.components.schemas.TransactionView.properties ?? {})).toEqual(
      expect.arrayContaining(['gid', 'mode', 'status', 'reason', 'createdAt', 'updatedAt', 'deadline', 'metadata', 'branches']),
    );
    for (const role of ['client', 'participant', 'metrics', 'admin']) {
      expect(document.components.securitySchemes?.[`${role}Key`]).toMatchObject({ type: 'http', scheme: 'bearer' });
    }
    expect(get.security).toEqual([{ clientKey: [] }]);
    expect(document.paths['/admin/transactions'].get.security).toEqual([{ adminKey: [] }]);
    expect(document.paths['/health/live'].get.security).toEqual([]);
  });
});

describe('Swagger UI at /docs', () => {
  it('serves the HTML page and its scripts from this process (no CDN)', async () => {
    const page = await fetch(`${coord.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    const scripts = [...html.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      expect(src).not.toMatch(/^(https?:)?\/\//);
      const asset = await fetch(new URL(src, `${coord.url}/docs`));
      expect(asset.status, src).toBe(200);
      expect(asset.headers.get('content-type'), src).toContain('javascript');
    }
    expect(scripts.some((src) => src.endsWith('swagger-ui-bundle.js'))).toBe(true);
  });
});

describe('logs', () => {
  const suffix = randomBytes(3).toString('hex');
  const committedGid = `obs-commit-${suffix}`;
  const refusedGid = `obs-refuse-${suffix}`;
  const adminGid = `obs-admin-${suffix}`;

  type LogLine = Record<string, unknown> & { level: string; time: string; msg: string; instance: string };
  const linesOf = (text: string): string[] => text.split('\n').filter((line) => line.trim() !== '');
  const readLog = (): string => (existsSync(coord.process.logFile) ? readFileSync(coord.process.logFile, 'utf8') : '');
  const parse = (text: string): LogLine[] => linesOf(text).map((line) => JSON.parse(line) as LogLine);
  const finishedLine = (gid: string) => (line: LogLine) => line.gid === gid && typeof line.msg === 'string' && line.msg.startsWith('finished');
  let lines: LogLine[] = [];

  beforeAll(async () => {
    const client = new TransactionClient({ coordinatorUrl: coord.url });
    // Interactive TCC that commits: one branch, try then confirm.
    await client.begin({ mode: 'tcc', gid: committedGid });
    await client.addBranch(committedGid, { branchId: 'debit-1', participant: 'obs-bank', action: 'debit', payload: { accountId: 'olivia', amount: 10 } });
    await client.commit(committedGid, { wait: true });
    // One-shot TCC refused by the bank (insufficient funds): try fails, cancel is sent.
    await client.begin({
      mode: 'tcc',
      gid: refusedGid,
      wait: true,
      branches: [{ branchId: 'too-much', participant: 'obs-bank', action: 'debit', payload: { accountId: 'olivia', amount: 1_000_000 } }],
    });
    // An operator's forced rollback is logged at the default level too.
    await client.begin({ mode: 'tcc', gid: adminGid });
    expect((await postJson(`${coord.url}/admin/transactions/${adminGid}/rollback`, {})).status).toBe(200);
    // The log file is written through a pipe: wait until the last transaction's end has reached it.
    await until('the coordinator to log the end of every transaction', () => {
      const parsed = parse(readLog());
      return Promise.resolve([committedGid, refusedGid, adminGid].every((gid) => parsed.some(finishedLine(gid))) ? true : undefined);
    });
    lines = parse(readLog());
  });

  it('are one JSON object per line, each with level, time, instance, context and msg', () => {
    const raw = linesOf(readLog());
    expect(raw.length).toBeGreaterThan(10);
    for (const line of raw) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    for (const line of lines) {
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(line.level);
      expect(new Date(line.time).toISOString()).toBe(line.time);
      expect(line.instance).toBe('obs-coordinator');
      expect(typeof line.msg).toBe('string');
      expect(typeof line.context).toBe('string');
    }
    expect(lines.some((l) => l.context === 'Bootstrap' && l.msg.includes('listening'))).toBe(true);
  });

  it('carry gid as a field on every line about a transaction, never only in the text', () => {
    for (const gid of [committedGid, refusedGid, adminGid]) {
      const about = lines.filter((l) => l.gid === gid || l.msg.includes(gid));
      expect(about.length, gid).toBeGreaterThan(0);
      for (const line of about) expect(line.gid, line.msg).toBe(gid);
    }
  });

  it('carry branchId as a field on the lines about a branch: its phase calls and their outcome', () => {
    const calls = (gid: string) => lines.filter((l) => l.gid === gid && l.context === 'BranchCaller');
    expect(calls(committedGid).map((l) => [l.branchId, l.phase, l.outcome])).toEqual([
      ['debit-1', 'try', 'ok'],
      ['debit-1', 'confirm', 'ok'],
    ]);
    expect(calls(refusedGid).map((l) => [l.branchId, l.phase, l.outcome])).toEqual([
      ['too-much', 'try', 'failed'],
      ['too-much', 'cancel', 'ok'],
    ]);
  });

  it('show decisions and ends as fields too, and an operator action at the default level (info)', () => {
    expect(lines.find(finishedLine(committedGid))).toMatchObject({ status: 'committed', level: 'debug' });
    expect(lines.find(finishedLine(refusedGid))).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    expect(lines.find((l) => l.gid === adminGid && l.msg === 'rolled back by an operator')).toMatchObject({ level: 'info', context: 'AdminService' });
  });

  it('have no info-level line per HTTP request (requests are not logged at the default level)', () => {
    expect(lines.filter((l) => l.level === 'info' && /\b(GET|POST) \//.test(l.msg))).toEqual([]);
  });
});
