/**
 * Reporting a phase's outcome (PROTOCOL.md 3.6) to a coordinator played by a real HTTP server
 * on 127.0.0.1: what goes on the wire, what counts as done, what is sent again and when.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { CoordinatorError } from '../client/coordinator-error.js';
import { TransactionClient } from '../client/transaction-client.js';
import { BranchOutcomes, reportOutcomeRetrying, type OutcomeReportRetries } from './branch-outcomes.js';

/** What the coordinator received. */
interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  at: number;
}

/** One answer of the coordinator: a status, headers and body, or `drop` (the connection cut before any answer). */
type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'drop';

const view = (gid: string): TransactionView => ({
  gid,
  mode: 'tcc',
  status: 'active',
  reason: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  deadline: '2026-01-01T00:01:00.000Z',
  metadata: {},
  needsAttention: false,
  branches: [{ branchId: 'b 1', participant: 'approvals', action: 'approve', status: 'prepared', attempts: 2, lastError: null, result: { approved: true }, waitingSince: null }],
});

const errorBody = (statusCode: number, error: string, message: string) => JSON.stringify({ statusCode, error, message });

let server: Server;
let coordinatorUrl: string;
const received: Received[] = [];
/** The answers still to give, in order; when none is left, 200 with the view. */
let script: Answer[] = [];

function answer(res: ServerResponse, next: Answer | undefined, gid: string): void {
  if (next === 'drop') {
    res.socket?.destroy();
    return;
  }
  const { status, body, headers } = next ?? { status: 200, body: JSON.stringify(view(gid)) };
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body ?? '');
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text ? (JSON.parse(text) as unknown) : undefined, at: Date.now() });
      const gid = decodeURIComponent((req.url ?? '').split('/')[3] ?? '');
      answer(res, script.shift(), gid);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  coordinatorUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  received.length = 0;
  script = [];
});

/** Fast retries, so a case takes milliseconds; Retry-After still counts, up to maxDelayMs. */
const FAST: OutcomeReportRetries = { attempts: 4, firstDelayMs: 5, maxDelayMs: 2_000 };
const client = () => new TransactionClient({ coordinatorUrl, apiKey: 'key-approvals', retries: 0, maxBackPressureWaitMs: 0 });
const call = { gid: 'order/42', branchId: 'b 1', phase: 'try' as const };

describe('BranchOutcomes', () => {
  it('posts { phase, outcome, result } to the branch’s outcome route with the participant’s key, and a 200 is recorded', async () => {
    const outcomes = new BranchOutcomes({ coordinatorUrl: `${coordinatorUrl}/`, apiKey: 'key-approvals' });
    expect(await outcomes.report(call, 'ok', { approved: true })).toEqual({ status: 'recorded', transaction: view('order/42') });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      method: 'POST',
      url: '/v1/transactions/order%2F42/branches/b%201/outcome',
      headers: { authorization: 'Bearer key-approvals', 'content-type': 'application/json' },
      body: { phase: 'try', outcome: 'ok', result: { approved: true } },
    });
  });

  it('sends a refusal as failed with its details, and a result of null when none is given; a 201 is recorded too', async () => {
    script = [{ status: 201, body: JSON.stringify(view('order/42')) }, { status: 200, body: JSON.stringify(view('order/42')) }];
    expect(await reportOutcomeRetrying(client(), { ...call, phase: 'cancel' }, 'failed', { reason: 'refused' }, FAST)).toMatchObject({ status: 'recorded' });
    expect(await reportOutcomeRetrying(client(), call, 'ok', undefined, FAST)).toMatchObject({ status: 'recorded' });
    expect(received.map((r) => r.body)).toEqual([
      { phase: 'cancel', outcome: 'failed', result: { reason: 'refused' } },
      { phase: 'try', outcome: 'ok', result: null },
    ]);
  });

  it('reads 409 PHASE_NOT_IN_PROGRESS as already settled: an answer, not an error, and not sent again', async () => {
    script = [{ status: 409, body: errorBody(409, 'PHASE_NOT_IN_PROGRESS', 'branch b 1 is not waiting on try') }];
    expect(await reportOutcomeRetrying(client(), call, 'ok', null, FAST)).toEqual({ status: 'already_settled', message: 'branch b 1 is not waiting on try' });
    expect(received).toHaveLength(1);
  });

  it('sends again after no answer, a 5xx (JSON or a gateway’s page) and a 503 with Retry-After, until it is recorded', async () => {
    script = [
      'drop',
      { status: 500, body: errorBody(500, 'INTERNAL', 'boom') },
      { status: 502, body: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } },
    ];
    expect(await reportOutcomeRetrying(client(), call, 'ok', null, FAST)).toMatchObject({ status: 'recorded' });
    expect(received).toHaveLength(4);
    expect(new Set(received.map((r) => JSON.stringify(r.body)))).toEqual(new Set([JSON.stringify({ phase: 'try', outcome: 'ok', result: null })]));

    received.length = 0;
    script = [{ status: 503, body: errorBody(503, 'STORE_UNAVAILABLE', 'database away'), headers: { 'retry-after': '1' } }];
    expect(await reportOutcomeRetrying(client(), call, 'ok', null, FAST)).toMatchObject({ status: 'recorded' });
    expect(received).toHaveLength(2);
    // Retry-After: 1 second, not the 5 ms backoff.
    expect(received[1].at - received[0].at).toBeGreaterThanOrEqual(900);
  });

  it('sends again after a 429, and gives up after its attempts with the last error', async () => {
    script = [
      { status: 429, body: errorBody(429, 'RATE_LIMITED', 'slow down'), headers: { 'retry-after': '0' } },
      ...Array.from({ length: 4 }, (): Answer => ({ status: 503, body: errorBody(503, 'OVERLOADED', 'busy'), headers: { 'retry-after': '0' } })),
    ];
    const failure = await reportOutcomeRetrying(client(), call, 'ok', null, FAST).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CoordinatorError);
    expect(failure).toMatchObject({ statusCode: 503, code: 'OVERLOADED' });
    expect(received).toHaveLength(FAST.attempts);
  });

  it.each([
    [400, 'VALIDATION_FAILED'],
    [401, 'UNAUTHENTICATED'],
    [403, 'FORBIDDEN'],
    [404, 'TX_NOT_FOUND'],
    [409, 'TX_ALREADY_DECIDED'],
  ])('throws a %i %s at once: sending it again would not change the answer', async (status, code) => {
    script = [{ status, body: errorBody(status, code, 'no') }];
    await expect(reportOutcomeRetrying(client(), call, 'ok', null, FAST)).rejects.toMatchObject({ statusCode: status, code });
    expect(received).toHaveLength(1);
  });
});

describe('TransactionClient.reportOutcome', () => {
  it('answers the view, and throws PHASE_NOT_IN_PROGRESS as the CoordinatorError it is', async () => {
    script = [{ status: 200, body: JSON.stringify(view('g1')) }, { status: 409, body: errorBody(409, 'PHASE_NOT_IN_PROGRESS', 'settled') }];
    const plain = new TransactionClient({ coordinatorUrl });
    expect(await plain.reportOutcome('g1', 'b1', { phase: 'confirm', outcome: 'ok' })).toEqual(view('g1'));
    await expect(plain.reportOutcome('g1', 'b1', { phase: 'confirm', outcome: 'ok' })).rejects.toMatchObject({ statusCode: 409, code: 'PHASE_NOT_IN_PROGRESS' });
    expect(received.map((r) => [r.url, r.body, r.headers.authorization])).toEqual([
      ['/v1/transactions/g1/branches/b1/outcome', { phase: 'confirm', outcome: 'ok', result: null }, undefined],
      ['/v1/transactions/g1/branches/b1/outcome', { phase: 'confirm', outcome: 'ok', result: null }, undefined],
    ]);
  });
});
