import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTracing, type TestTracing } from '../../../../test/support/tracing.js';
import { HttpWorkflowCoordinator } from '../workflow/http-workflow-coordinator.js';
import { CoordinatorError } from './coordinator-error.js';
import { TransactionClient } from './transaction-client.js';

/** A coordinator that answers each request with the next scripted answer and keeps the headers it got. */
class ScriptedCoordinator {
  readonly seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
  answers: { status: number; body: unknown }[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      req.resume();
      req.on('end', () => {
        const answer = this.answers.shift() ?? { status: 200, body: {} };
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const view = (gid: string) => ({ gid, mode: 'saga', status: 'committed', branches: [] });
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe('the clients\' requests to the coordinator', () => {
  const coordinator = new ScriptedCoordinator();
  let tracing: TestTracing;

  beforeAll(() => coordinator.start());
  afterAll(() => coordinator.stop());
  beforeEach(() => {
    coordinator.seen.length = 0;
    tracing = startTracing();
  });
  afterEach(() => tracing.stop());

  it('begin: a CLIENT span in the caller\'s trace, whose context the request carries as traceparent', async () => {
    const client = new TransactionClient({ coordinatorUrl: coordinator.url });
    coordinator.answers = [{ status: 201, body: view('g-begin') }];
    const caller = await trace.getTracer('app').startActiveSpan('checkout', async (span) => {
      await client.begin({ mode: 'saga', gid: 'g-begin', steps: [] });
      span.end();
      return span.spanContext();
    });
    const begin = tracing.span('dtx.client begin');
    expect(begin.kind).toBe(SpanKind.CLIENT);
    expect(begin.spanContext().traceId).toBe(caller.traceId);
    expect(begin.parentSpanContext?.spanId).toBe(caller.spanId);
    const sent = TRACEPARENT.exec(String(coordinator.seen[0].headers.traceparent));
    expect(sent?.[1]).toBe(caller.traceId);
    expect(sent?.[2]).toBe(begin.spanContext().spanId);
    expect(begin.attributes).toEqual({
      'http.request.method': 'POST',
      'dtx.gid': 'g-begin',
      'dtx.mode': 'saga',
      'url.full': `${coordinator.url}/v1/transactions`,
      'http.response.status_code': 201,
    });
    expect(begin.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('starts a trace when the caller has none; the gid the client made up is on the span', async () => {
    const client = new TransactionClient({ coordinatorUrl: coordinator.url });
    coordinator.answers = [{ status: 201, body: view('any') }];
    await client.begin({ mode: 'tcc' });
    const begin = tracing.span('dtx.client begin');
    expect(begin.parentSpanContext).toBeUndefined();
    expect(TRACEPARENT.exec(String(coordinator.seen[0].headers.traceparent))?.[1]).toBe(begin.spanContext().traceId);
    expect(begin.attributes['dtx.gid']).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
  });

  it('one span over the attempts, each carrying it; an error answer sets the error status and the coordinator\'s code', async () => {
    const client = new TransactionClient({ coordinatorUrl: [coordinator.url, coordinator.url], maxBackPressureWaitMs: 5_000 });
    coordinator.answers = [
      { status: 503, body: { statusCode: 503, error: 'STORE_UNAVAILABLE', message: 'down' } },
      { status: 409, body: { statusCode: 409, error: 'TX_ALREADY_DECIDED', message: 'decided' } },
    ];
    await expect(client.commit('g-commit')).rejects.toBeInstanceOf(CoordinatorError);
    const commit = tracing.span('dtx.client commit');
    expect(coordinator.seen.map((request) => request.headers.traceparent)).toEqual([
      expect.stringContaining(commit.spanContext().spanId),
      expect.stringContaining(commit.spanContext().spanId),
    ]);
    expect(commit.attributes).toMatchObject({ 'dtx.gid': 'g-commit', 'http.response.status_code': 409, 'error.type': 'TX_ALREADY_DECIDED' });
    expect(commit.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TX_ALREADY_DECIDED' });
  });

  it('no answer at all: the error status, NETWORK, and the exception', async () => {
    const client = new TransactionClient({ coordinatorUrl: 'http://127.0.0.1:1', retries: 0 });
    await expect(client.get('g-nobody')).rejects.toMatchObject({ code: 'NETWORK' });
    const get = tracing.span('dtx.client get');
    expect(get.attributes).toMatchObject({ 'dtx.gid': 'g-nobody', 'error.type': 'NETWORK', 'url.full': 'http://127.0.0.1:1/v1/transactions/g-nobody' });
    expect(get.status.code).toBe(SpanStatusCode.ERROR);
    expect(get.events.map((event) => event.name)).toEqual(['exception']);
  });

  it('the workflow runner\'s requests too', async () => {
    const workflows = new HttpWorkflowCoordinator({ coordinatorUrl: coordinator.url });
    coordinator.answers = [{ status: 201, body: { status: 'prepared', result: 1 } }];
    expect(await workflows.recordStep('g-wf', { stepId: 's1', kind: 'call', participant: 'p', action: 'a', payload: {} } as never)).toMatchObject({ kind: 'recorded' });
    const step = tracing.span('dtx.client recordStep');
    expect(step.attributes).toMatchObject({ 'dtx.gid': 'g-wf', 'url.full': `${coordinator.url}/v1/transactions/g-wf/steps`, 'http.response.status_code': 201 });
    expect(coordinator.seen[0].headers.traceparent).toContain(step.spanContext().spanId);
  });

  it('url.full never shows a password written into a coordinator URL (which fetch refuses to send to)', async () => {
    const client = new TransactionClient({ coordinatorUrl: 'http://ops:secret@127.0.0.1:1', retries: 0 });
    await expect(client.get('g-secret')).rejects.toMatchObject({ code: 'NETWORK' });
    expect(tracing.span('dtx.client get').attributes['url.full']).toBe('http://REDACTED:REDACTED@127.0.0.1:1/v1/transactions/g-secret');
  });
});

describe('without an OpenTelemetry SDK', () => {
  const coordinator = new ScriptedCoordinator();
  beforeAll(() => coordinator.start());
  afterAll(() => coordinator.stop());

  it('sends no trace context', async () => {
    coordinator.answers = [{ status: 201, body: view('g-off') }];
    await new TransactionClient({ coordinatorUrl: coordinator.url }).begin({ mode: 'saga', gid: 'g-off', steps: [] });
    expect(coordinator.seen[0].headers).not.toHaveProperty('traceparent');
    expect(coordinator.seen[0].headers).not.toHaveProperty('tracestate');
  });
});
