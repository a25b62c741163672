/**
 * The HTTP coordinator port against a real HTTP server on 127.0.0.1 that answers as
 * PROTOCOL.md 3.1, 3.3, 3.4 and 3.7 say (no mocked fetch): what it sends, and how each answer
 * the runner depends on comes back.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CoordinatorError } from '../client/coordinator-error.js';
import { HttpWorkflowCoordinator } from './http-workflow-coordinator.js';

interface Received {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

interface Scripted {
  status: number;
  /** JSON, or raw text (a proxy's error page). */
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

/** A coordinator whose answers each test scripts, in order; it keeps what it received. */
class ScriptedCoordinator {
  readonly received: Received[] = [];
  answers: Scripted[] = [];
  url = '';
  private server: Server | null = null;

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      this.received.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization, body: text ? JSON.parse(text) : undefined });
      const answer = this.answers.shift() ?? { status: 500, body: { statusCode: 500, error: 'INTERNAL', message: 'no answer scripted' } };
      res.writeHead(answer.status, { 'content-type': answer.raw === undefined ? 'application/json' : 'text/html', ...answer.headers });
      res.end(answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body)));
    });
  }
}

const coordinator = new ScriptedCoordinator();
let port: HttpWorkflowCoordinator;

/** A workflow's view as 3.4 and 3.7 show it. */
const view = (over: Record<string, unknown> = {}) => ({
  gid: 'wf-1',
  mode: 'workflow',
  status: 'active',
  reason: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  deadline: '2026-01-01T00:01:00.000Z',
  metadata: {},
  needsAttention: false,
  input: { orderId: 'o-1' },
  result: null,
  branches: [
    { branchId: '1', kind: 'tcc', participant: 'inventory', action: 'reserve', status: 'prepared', attempts: 1, lastError: null, result: { reserved: 1 } },
    { branchId: 'pick', kind: 'local', participant: 'orders', action: null, status: 'prepared', attempts: 0, lastError: null, result: 0.5 },
  ],
  ...over,
});

const error = (statusCode: number, code: string, extra: Record<string, unknown> = {}) => ({ statusCode, error: code, message: `${code} happened`, ...extra });

beforeAll(async () => {
  await coordinator.start();
});

afterAll(async () => {
  await coordinator.stop();
});

beforeEach(() => {
  coordinator.received.length = 0;
  coordinator.answers = [];
  port = new HttpWorkflowCoordinator({ coordinatorUrl: `${coordinator.url}/`, apiKey: 'key-1' });
});

describe('HttpWorkflowCoordinator', () => {
  it('begins with mode workflow, its host and input; 201 is a new workflow, 200 an existing one', async () => {
    coordinator.answers = [{ status: 201, body: view({ branches: [] }) }, { status: 200, body: view() }];
    const request = { gid: 'wf-1', timeoutMs: 30_000, workflow: { participant: 'orders', name: 'placeOrder' }, input: { orderId: 'o-1' } };
    const created = await port.begin(request);
    const again = await port.begin(request);
    expect(coordinator.received[0]).toEqual({ method: 'POST', path: '/v1/transactions', authorization: 'Bearer key-1', body: { mode: 'workflow', ...request } });
    expect(created).toMatchObject({ created: true, view: { gid: 'wf-1', status: 'active', input: { orderId: 'o-1' }, branches: [] } });
    expect(again.created).toBe(false);
    expect(again.view.branches).toEqual([
      { branchId: '1', kind: 'tcc', participant: 'inventory', action: 'reserve', status: 'prepared', lastError: null, result: { reserved: 1 } },
      { branchId: 'pick', kind: 'local', participant: 'orders', action: null, status: 'prepared', lastError: null, result: 0.5 },
    ]);
  });

  it('records a step and reads each answer of 3.7 (201, 202, 409 BRANCH_FAILED / STEP_MISMATCH / TX_NOT_ACTIVE, 502 / 504 BRANCH_UNKNOWN)', async () => {
    coordinator.answers = [
      { status: 201, body: { branchId: '1', status: 'prepared', result: { reserved: 1 } } },
      { status: 202, body: { branchId: '1', status: 'pending' } },
      { status: 202, body: { branchId: '1', status: 'pending', retryAfterMs: 1500 } },
      { status: 409, body: error(409, 'BRANCH_FAILED', { branchId: '1', status: 'failed', lastError: { error: 'BUSINESS_FAILURE', message: 'out of stock' } }) },
      { status: 502, body: error(502, 'BRANCH_UNKNOWN', { branchId: '1', status: 'pending', lastError: 'no answer within 5000 ms' }) },
      { status: 504, body: error(504, 'BRANCH_UNKNOWN', { branchId: '1', status: 'pending', lastError: null }) },
      { status: 409, body: error(409, 'STEP_MISMATCH') },
      { status: 409, body: error(409, 'TX_NOT_ACTIVE') },
    ];
    const step = { stepId: '1', kind: 'tcc', participant: 'inventory', action: 'reserve', payload: { sku: 'x' } } as const;
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await port.recordStep('wf/1', step));
    expect(answers).toEqual([
      { kind: 'recorded', status: 'prepared', result: { reserved: 1 } },
      { kind: 'ongoing', retryAfterMs: null },
      { kind: 'ongoing', retryAfterMs: 1500 },
      { kind: 'failed', lastError: { error: 'BUSINESS_FAILURE', message: 'out of stock' } },
      { kind: 'unknown', lastError: 'no answer within 5000 ms' },
      { kind: 'unknown', lastError: null },
      { kind: 'mismatch', message: 'STEP_MISMATCH happened' },
      { kind: 'not_active', message: 'TX_NOT_ACTIVE happened' },
    ]);
    expect(coordinator.received[0]).toMatchObject({ method: 'POST', path: '/v1/transactions/wf%2F1/steps', body: step });
  });

  it('sends a local step with its result and compensation', async () => {
    coordinator.answers = [{ status: 201, body: { branchId: 'pick', status: 'prepared', result: 0.5 } }];
    const step = { stepId: 'pick', kind: 'local', result: 0.5, compensate: { participant: 'audit', action: 'forget', payload: { n: 1 } } } as const;
    expect(await port.recordStep('wf-1', step)).toEqual({ kind: 'recorded', status: 'prepared', result: 0.5 });
    expect(coordinator.received[0].body).toEqual(step);
  });

  it('throws any other refusal as a CoordinatorError with its code (a 400 about the step itself, a 404)', async () => {
    coordinator.answers = [{ status: 400, body: error(400, 'UNKNOWN_PARTICIPANT', { field: 'participant' }) }, { status: 404, body: error(404, 'TX_NOT_FOUND') }];
    const step = { stepId: '1', kind: 'saga', participant: 'nobody', action: 'x', payload: {} } as const;
    await expect(port.recordStep('wf-1', step)).rejects.toMatchObject({ statusCode: 400, code: 'UNKNOWN_PARTICIPANT' });
    await expect(port.get('wf-1')).rejects.toBeInstanceOf(CoordinatorError);
  });

  it('commits with the result (none when undefined) and rolls back; reads CANNOT_COMMIT and TX_ALREADY_DECIDED', async () => {
    coordinator.answers = [
      { status: 200, body: view({ status: 'committing' }) },
      { status: 200, body: view({ status: 'committing' }) },
      { status: 409, body: error(409, 'CANNOT_COMMIT', { transaction: view({ status: 'rolling_back' }) }) },
      { status: 200, body: view({ status: 'rolling_back' }) },
      { status: 409, body: error(409, 'TX_ALREADY_DECIDED') },
    ];
    expect(await port.commit('wf-1', { shipped: true })).toEqual({ kind: 'accepted', status: 'committing' });
    expect(await port.commit('wf-1', undefined)).toEqual({ kind: 'accepted', status: 'committing' });
    expect(await port.commit('wf-1', null)).toEqual({ kind: 'refused', code: 'CANNOT_COMMIT', message: 'CANNOT_COMMIT happened' });
    expect(await port.rollback('wf-1')).toEqual({ kind: 'accepted', status: 'rolling_back' });
    expect(await port.rollback('wf-1')).toEqual({ kind: 'refused', code: 'TX_ALREADY_DECIDED', message: 'TX_ALREADY_DECIDED happened' });
    expect(coordinator.received.map(({ path, body }) => [path, body])).toEqual([
      ['/v1/transactions/wf-1/commit', { result: { shipped: true } }],
      ['/v1/transactions/wf-1/commit', {}],
      ['/v1/transactions/wf-1/commit', { result: null }],
      ['/v1/transactions/wf-1/rollback', {}],
      ['/v1/transactions/wf-1/rollback', {}],
    ]);
  });

  it('reads a workflow (GET), and refuses a view whose steps have no kind', async () => {
    coordinator.answers = [{ status: 200, body: view({ status: 'committed', result: { shipped: true } }) }, { status: 200, body: view({ branches: [{ branchId: '1', status: 'prepared' }] }) }];
    expect(await port.get('wf-1')).toMatchObject({ status: 'committed', result: { shipped: true }, input: { orderId: 'o-1' } });
    expect(coordinator.received[0]).toMatchObject({ method: 'GET', path: '/v1/transactions/wf-1', body: undefined });
    await expect(port.get('wf-1')).rejects.toThrow('branches[0].kind');
  });

  it('sends again what got no answer, 503 STORE_UNAVAILABLE, a proxy\'s error page, or a Retry-After refusal; then gives the coordinator\'s answer', async () => {
    coordinator.answers = [
      { status: 503, body: error(503, 'STORE_UNAVAILABLE') },
      { status: 502, raw: '<html>Bad Gateway</html>' },
      { status: 429, body: error(429, 'RATE_LIMITED'), headers: { 'retry-after': '0' } },
      { status: 201, body: { branchId: '1', status: 'prepared', result: 1 } },
    ];
    const step = { stepId: '1', kind: 'saga', participant: 'shipping', action: 'ship', payload: {} } as const;
    expect(await port.recordStep('wf-1', step)).toEqual({ kind: 'recorded', status: 'prepared', result: 1 });
    expect(coordinator.received).toHaveLength(4);
    expect(new Set(coordinator.received.map((r) => JSON.stringify(r.body)))).toEqual(new Set([JSON.stringify(step)]));
  });

  it('moves on to the next coordinator URL when one does not answer', async () => {
    const dead = new HttpWorkflowCoordinator({ coordinatorUrl: ['http://127.0.0.1:1', coordinator.url], retries: 2 });
    coordinator.answers = [{ status: 200, body: view() }];
    expect((await dead.get('wf-1')).gid).toBe('wf-1');
    const none = new HttpWorkflowCoordinator({ coordinatorUrl: 'http://127.0.0.1:1', retries: 1 });
    await expect(none.get('wf-1')).rejects.toMatchObject({ code: 'NETWORK', message: expect.stringContaining('after 2 attempts') });
  });
});
