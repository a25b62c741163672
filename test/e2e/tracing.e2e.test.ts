/**
 * OpenTelemetry end to end (docs/observability.md): a real OTLP/HTTP receiver in this process
 * (test/support/otlp-receiver.ts); a coordinator process and account services (SDK participants
 * over HTTP, RabbitMQ and NATS) exporting to it through the official SDK, configured by the
 * standard OTEL_* variables; the client here with a tracer provider of its own.
 *
 * For a TCC over HTTP and a saga over RabbitMQ and NATS: one trace id from the client's begin
 * through the coordinator to the participant's business span, parent by parent; the phase spans'
 * attributes; a retried phase shows each attempt; the coordinator's log lines about the
 * transaction carry the same trace id. And the coordinator's metrics arrive over OTLP.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { context, propagation, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { accountsOf, openAccount, postJson, until, type CoordinatorHandle, type ParticipantTransport, type ServiceHandle } from '../../scripts/lib/stack.js';
import type { TestDatabase } from '../support/databases.js';
import { OtlpReceiver, SPAN_KIND, STATUS_ERROR, type ReceivedSpan } from '../support/otlp-receiver.js';
import { closeServer } from '../support/servers.js';
import { startTransportBanks } from '../support/transport-banks.js';

const run = randomBytes(3).toString('hex');
const receiver = new OtlpReceiver();
/** The client's own spans (this process). */
const clientSpans = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: clientSpans })] });
const contextManager = new AsyncLocalStorageContextManager();
const tracer = trace.getTracer('tracing-e2e');

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let banks = new Map<ParticipantTransport, ServiceHandle>();
let client: TransactionClient;
let flaky: Server;
/** The flaky participant's confirm calls: the first is answered 503, the next 200. */
let flakyConfirms = 0;

const bankName = (transport: ParticipantTransport) => `trace-bank-${transport}-${run}`;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  await receiver.start();
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    // Export spans within 100 ms and metrics every half second, so the test waits little.
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
  };
  ({ databases, coord, banks } = await startTransportBanks('tracing', ['http', 'rabbitmq', 'nats'], bankName, {
    // Retries within 300 ms, so the retried confirm below comes quickly.
    coordinator: { ...otel, OTEL_SERVICE_NAME: 'dtx-coordinator-e2e', LOG_LEVEL: 'debug', RETRY_MAX_MS: '300' },
    banks: otel,
  }));
  for (const bank of banks.values()) await openAccount(bank, 'alice', 1_000);
  // A participant without the SDK whose first confirm fails (503): the coordinator retries it.
  flaky = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const failNow = request.url?.endsWith('/confirm') && flakyConfirms++ === 0;
      response.writeHead(failNow ? 503 : 200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
  const registered = await postJson(`${coord.url}/v1/participants`, {
    name: `trace-flaky-${run}`,
    transport: 'http',
    endpoint: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/tx`,
    actions: [{ name: 'reserve', modes: ['tcc'] }],
  });
  expect(registered.status).toBe(201);
  client = new TransactionClient({ coordinatorUrl: coord.url });
}, 180_000);

afterAll(async () => {
  await Promise.all([...[...banks.values()].map((b) => b.process.kill()), coord?.process.kill()]);
  if (flaky) await closeServer(flaky);
  await receiver.stop();
  await Promise.all(databases.map((d) => d.drop()));
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

/** Runs `work` in a root span of the client's (an application's request, say) and returns its trace id. */
async function inClientTrace<T>(name: string, work: () => Promise<T>): Promise<{ traceId: string; result: T }> {
  return tracer.startActiveSpan(name, async (span: Span) => {
    try {
      return { traceId: span.spanContext().traceId, result: await work() };
    } finally {
      span.end();
    }
  });
}

/** The span `name` (exactly, or matching) of a trace, once the receiver has it. */
function spansNamed(spans: readonly ReceivedSpan[], name: string | RegExp): ReceivedSpan[] {
  return spans.filter((s) => (typeof name === 'string' ? s.name === name : name.test(s.name)));
}

/** Waits until the receiver has every span the check asks for. */
function traceOf(traceId: string, complete: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
  return until(`the spans of trace ${traceId}`, () => {
    const spans = receiver.trace(traceId);
    return Promise.resolve(complete(spans) ? spans : undefined);
  }, 20_000);
}

/** The chain of parents from a span up to the root, by name, as service/name. */
function ancestry(spans: readonly ReceivedSpan[], from: ReceivedSpan, client: readonly { spanId: string; name: string }[]): string[] {
  const chain: string[] = [];
  let current: { parentSpanId: string; name: string; service: string } | undefined = from;
  while (current) {
    chain.push(`${current.service}/${current.name}`);
    const parentId: string = current.parentSpanId;
    if (parentId === '') break;
    const parent: ReceivedSpan | undefined = spans.find((s) => s.spanId === parentId);
    if (parent) {
      current = parent;
      continue;
    }
    const local = client.find((s) => s.spanId === parentId);
    current = local ? { parentSpanId: '', name: local.name, service: 'client' } : undefined;
    if (!local) chain.push(`? ${parentId}`);
  }
  return chain;
}

const clientSpanList = () =>
  clientSpans.getFinishedSpans().map((s) => ({ spanId: s.spanContext().spanId, traceId: s.spanContext().traceId, name: s.name, parent: s.parentSpanContext?.spanId }));

/** The coordinator's JSON log lines about one transaction. */
function logLinesOf(gid: string): Record<string, unknown>[] {
  return readFileSync(coord.process.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.gid === gid);
}

describe('a TCC over HTTP, traced', () => {
  let traceId: string;
  let view: TransactionView;
  const gid = `trace-tcc-${run}`;

  beforeAll(async () => {
    ({ traceId, result: view } = await inClientTrace('checkout', () =>
      client.begin({
        mode: 'tcc',
        gid,
        wait: true,
        branches: [{ participant: bankName('http'), action: 'debit', payload: { accountId: 'alice', amount: 10 } }],
      }),
    ));
  }, 60_000);

  it('commits', () => {
    expect(view.status).toBe('committed');
  });

  it('is one trace from the client through the coordinator to the participant\'s business span', async () => {
    const spans = await traceOf(traceId, (s) => spansNamed(s, 'account.freeze').length === 1 && spansNamed(s, /^dtx\.call .* debit\/confirm$/).length === 1 && spansNamed(s, 'dtx.transaction tcc').length === 1);
    const [business] = spansNamed(spans, 'account.freeze');
    expect(ancestry(spans, business, clientSpanList())).toEqual([
      `${bankName('http')}/account.freeze`,
      `${bankName('http')}/dtx.handle debit/try`,
      `dtx-coordinator-e2e/dtx.call ${bankName('http')} debit/try`,
      'dtx-coordinator-e2e/dtx.transaction tcc',
      'client/dtx.client begin',
    ]);
    // The client's begin span is the child of its own request's span: the trace began there.
    const clientBegin = clientSpanList().find((s) => s.name === 'dtx.client begin' && s.traceId === traceId);
    const checkout = clientSpanList().find((s) => s.name === 'checkout' && s.traceId === traceId);
    expect(clientBegin?.parent).toBe(checkout?.spanId);
    // Every span of the three processes is in that one trace.
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['dtx-coordinator-e2e', bankName('http')]));
  });

  it('gives each phase call its participant, action, phase, attempt and outcome', async () => {
    const spans = await traceOf(traceId, (s) => spansNamed(s, /^dtx\.call /).length === 2);
    const calls = spansNamed(spans, /^dtx\.call /).sort((a, b) => Number(a.startNs - b.startNs));
    expect(calls.map((c) => [c.kind, c.attributes['dtx.phase'], c.attributes['dtx.outcome']])).toEqual([
      [SPAN_KIND.client, 'try', 'ok'],
      [SPAN_KIND.client, 'confirm', 'ok'],
    ]);
    expect(calls[0].attributes).toMatchObject({
      'dtx.gid': gid,
      'dtx.branch_id': 'b1',
      'dtx.mode': 'tcc',
      'dtx.participant': bankName('http'),
      'dtx.action': 'debit',
      'dtx.attempt': 1,
      'dtx.transport': 'http',
      'http.request.method': 'POST',
    });
    // Calls are counted per branch, every phase (the history's `attempt`): the confirm is its second.
    expect(calls[1].attributes['dtx.attempt']).toBe(2);
    // The confirm is a child of the commit's work, itself in the transaction's span.
    const [transaction] = spansNamed(spans, 'dtx.transaction tcc');
    expect(transaction.attributes).toMatchObject({ 'dtx.gid': gid, 'dtx.mode': 'tcc', 'dtx.status': 'committed' });
  });

  it('writes the log through batched writes that are in the trace', async () => {
    const spans = await traceOf(traceId, (s) => spansNamed(s, 'dtx.store.write').length >= 2);
    const writes = spansNamed(spans, 'dtx.store.write');
    expect(writes[0].attributes).toMatchObject({ 'db.system.name': 'postgresql' });
    expect(writes.every((w) => Number(w.attributes['db.operation.batch.size']) >= 1)).toBe(true);
  });

  it('has the coordinator\'s log lines about the transaction carry its trace id', async () => {
    const lines = await until('the log lines of the transaction', () => Promise.resolve(logLinesOf(gid).length >= 3 ? logLinesOf(gid) : undefined));
    expect(lines.filter((line) => line.trace_id !== traceId)).toEqual([]);
    expect(lines.every((line) => typeof line.span_id === 'string' && line.span_id.length === 16)).toBe(true);
  });
});

describe('a saga over RabbitMQ and NATS, traced', () => {
  let traceId: string;
  let view: TransactionView;
  const gid = `trace-saga-${run}`;

  beforeAll(async () => {
    ({ traceId, result: view } = await inClientTrace('transfer', () =>
      client.begin({
        mode: 'saga',
        gid,
        wait: true,
        steps: [
          { name: 'take', participant: bankName('rabbitmq'), action: 'debit', payload: { accountId: 'alice', amount: 5 } },
          { name: 'give', participant: bankName('nats'), action: 'credit', payload: { accountId: 'alice', amount: 5 } },
        ],
      }),
    ));
  }, 60_000);

  it('commits', async () => {
    expect(view.status).toBe('committed');
    expect((await accountsOf(banks.get('nats')!)).totalBalance).toBe(1_005);
  });

  for (const [transport, action, business] of [['rabbitmq', 'debit', 'account.withdraw'], ['nats', 'credit', 'account.deposit']] as const) {
    it(`is one trace down to the ${transport} participant's business span, its call a consumer's span under the coordinator's`, async () => {
      const spans = await traceOf(traceId, (s) => spansNamed(s, business).length === 1);
      const [span] = spansNamed(spans, business);
      expect(ancestry(spans, span, clientSpanList())).toEqual([
        `${bankName(transport)}/${business}`,
        `${bankName(transport)}/dtx.handle ${action}/execute`,
        `dtx-coordinator-e2e/dtx.call ${bankName(transport)} ${action}/execute`,
        'dtx-coordinator-e2e/dtx.transaction saga',
        'client/dtx.client begin',
      ]);
      const [handle] = spansNamed(spans, `dtx.handle ${action}/execute`);
      expect(handle.kind).toBe(SPAN_KIND.consumer);
      const [call] = spansNamed(spans, `dtx.call ${bankName(transport)} ${action}/execute`);
      expect(call.attributes).toMatchObject({ 'dtx.transport': transport, 'messaging.system': transport, 'dtx.outcome': 'ok', 'dtx.attempt': 1 });
    });
  }

  it('has the coordinator\'s log lines about the saga carry its trace id', async () => {
    const lines = await until('the log lines of the saga', () => Promise.resolve(logLinesOf(gid).length >= 2 ? logLinesOf(gid) : undefined));
    expect(lines.filter((line) => line.trace_id !== traceId)).toEqual([]);
  });
});

describe('a retried phase', () => {
  it('shows each attempt as a span of its own: the first an error, the second ok', async () => {
    const gid = `trace-retry-${run}`;
    const { traceId, result } = await inClientTrace('reserve', () =>
      client.begin({ mode: 'tcc', gid, wait: true, branches: [{ participant: `trace-flaky-${run}`, action: 'reserve', payload: {} }] }),
    );
    expect(result.status).toBe('committed');
    const spans = await traceOf(traceId, (s) => spansNamed(s, /reserve\/confirm$/).length === 2);
    const confirms = spansNamed(spans, /reserve\/confirm$/).sort((a, b) => Number(a.startNs - b.startNs));
    // The branch's try was its call 1; the confirm answered 503 is call 2, its retry call 3.
    expect(confirms.map((c) => [c.attributes['dtx.attempt'], c.attributes['dtx.outcome'], c.status.code === STATUS_ERROR])).toEqual([
      [2, 'transient', true],
      [3, 'ok', false],
    ]);
    expect(confirms[0].status.message).toMatch(/503/);
    // The retry ran in recovery's work on the transaction, still in its trace.
    expect(spans.find((s) => s.spanId === confirms[1].parentSpanId)?.name).toBe('dtx.recover');
  });
});

describe('metrics over OTLP', () => {
  it('exports the coordinator\'s own instruments, the same numbers /metrics shows', async () => {
    // Every begin of this file is done: the count /metrics shows no longer moves.
    const scraped = await (await fetch(`${coord.url}/metrics`)).text();
    const line = scraped.split('\n').find((l) => l.startsWith('dtx_transactions_begun_total{mode="tcc"}'));
    const onMetrics = Number(line?.split(' ').pop());
    // Two TCCs were begun here (the traced one and the retried one).
    expect(onMetrics).toBe(2);
    const latest = await until('dtx_transactions_begun over OTLP with the count /metrics shows', () => {
      const points = receiver.points.filter((p) => p.service === 'dtx-coordinator-e2e' && p.metric === 'dtx_transactions_begun' && p.attributes.mode === 'tcc');
      const last = points[points.length - 1];
      return Promise.resolve(last?.value === onMetrics ? last : undefined);
    }, 20_000);
    expect(latest).toMatchObject({ metric: 'dtx_transactions_begun', attributes: { mode: 'tcc' }, value: onMetrics });
    expect(receiver.refused).toEqual([]);
  });
});
