/**
 * OpenTelemetry through the SDK (issue 27), over real sockets with a real OpenTelemetry SDK
 * registered (in memory): a NestJS participant app (DtxParticipantModule on a real Postgres)
 * receives signed calls carrying the coordinator's `traceparent` on HTTP, TCP, Redis, RabbitMQ
 * and NATS. Its `dtx.handle {action}/{phase}` span is the child of the call that was sent, and
 * the span the business opens is the child of that one; a call without a `traceparent` starts
 * a trace; a refused call has its span but runs nothing. And a TransactionClient's begin
 * carries the caller's trace to the coordinator.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { firstValueFrom, timeout } from 'rxjs';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BRANCH_MESSAGE_PATTERN,
  formatSigningSecret,
  natsBranchSubject,
  natsConnectionOptions,
  natsParticipantQueueGroup,
  rabbitmqParticipantQueue,
  redisBranchPattern,
  redisTransportOptions,
  type Json,
  type PhaseCallBody,
} from '@nest-dtx/protocol';
import { BusinessFailure, DtxParticipantModule, SagaAction, TransactionClient, TransactionParticipant, type BranchContext, type ParticipantModuleOptions } from '@nest-dtx/sdk';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';
import { freePort, LEDGER_DDL, sign, startApp, type StartedApp } from '../support/signed-participant.js';
import { REMOTE_PARENT, startTracing, type TestTracing } from '../support/tracing.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const key = randomBytes(32);
const signingSecret = formatSigningSecret(key);
const run = randomBytes(3).toString('hex');

/** A business that opens a span of its own around its database write, as an instrumented app would. */
@Injectable()
@TransactionParticipant()
class TracedLedger {
  @SagaAction({ name: 'credit', compensate: 'undoCredit' })
  credit(payload: Json, { gid, phase, manager }: BranchContext): Promise<Json> {
    const asked = typeof payload === 'object' && payload !== null && !Array.isArray(payload) ? payload : {};
    return trace.getTracer('business').startActiveSpan('business', async (span) => {
      try {
        if (asked.refuse === true) throw new BusinessFailure('no such account');
        if (asked.explode === true) throw new Error('the ledger exploded');
        await manager.query(`INSERT INTO ledger (gid, phase, amount) VALUES ($1, $2, $3)`, [gid, phase, 5]);
        return { credited: 5 };
      } finally {
        span.end();
      }
    });
  }

  undoCredit(): Promise<Json> {
    return Promise.resolve(null);
  }
}

@Module({})
class TracedParticipantApp {
  static with(databaseUrl: string, options: ParticipantModuleOptions): DynamicModule {
    return {
      module: TracedParticipantApp,
      imports: [TypeOrmModule.forRoot({ type: 'postgres', url: databaseUrl, synchronize: false, retryAttempts: 0 }), DtxParticipantModule.forRoot(options)],
      providers: [TracedLedger],
    };
  }
}

let db: TestDatabase;
let dataSource: DataSource;
let tracing: TestTracing;

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('tracing', [LEDGER_DDL]));
  tracing = startTracing();
});

afterAll(async () => {
  await tracing?.stop();
  await dataSource?.destroy();
  await db?.drop();
});

beforeEach(() => tracing.reset());

const creditCall = (gid: string): PhaseCallBody => ({ gid, branchId: 'b1', mode: 'saga', action: 'credit', phase: 'execute', payload: { amount: 5 } });

/** POSTs `body` with `headers` and answers the status (node:http adds only host and content-length). */
function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The ledger rows of `gid`: what the business wrote. */
async function written(gid: string): Promise<number> {
  const rows: unknown[] = await dataSource.query(`SELECT 1 FROM ledger WHERE gid = $1`, [gid]);
  return rows.length;
}

type TransportKind = 'http' | 'tcp' | 'redis' | 'rabbitmq' | 'nats';

/** What each transport's span says besides the call's ids. */
function expectedTransportAttributes(kind: TransportKind, name: string): Record<string, unknown> {
  switch (kind) {
    case 'http':
      return { 'dtx.transport': 'http', 'http.request.method': 'POST', 'http.route': '/tx/:action/:phase', 'http.response.status_code': 200 };
    case 'tcp':
      return { 'dtx.transport': 'tcp', 'network.transport': 'tcp' };
    case 'redis':
      return { 'dtx.transport': 'redis' };
    case 'rabbitmq':
      return { 'dtx.transport': 'rabbitmq', 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process', 'messaging.destination.name': rabbitmqParticipantQueue(name) };
    case 'nats':
      return {
        'dtx.transport': 'nats',
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': natsBranchSubject(name),
        'messaging.consumer.group.name': natsParticipantQueueGroup(name),
      };
  }
}

describe.each<{ kind: TransportKind }>([{ kind: 'http' }, { kind: 'tcp' }, { kind: 'redis' }, { kind: 'rabbitmq' }, { kind: 'nats' }])('a participant on $kind', ({ kind }) => {
  const name = `trace-${kind}-${run}`;
  const gid = (label: string) => `trace-${kind}-${run}-${label}`;
  let started: StartedApp;
  let client: ClientProxy | null = null;
  /** Sends a signed call as the coordinator does on this transport, with the trace headers given; resolves when the answer came. */
  let send: (call: PhaseCallBody, traceHeaders: Record<string, string>, signWith?: Buffer) => Promise<unknown>;

  beforeAll(async () => {
    const common = { name, coordinatorUrl: 'http://127.0.0.1:1', register: false, signingSecret };
    let options: ParticipantModuleOptions;
    switch (kind) {
      case 'http':
        options = common;
        break;
      case 'tcp':
        options = { ...common, transport: { kind: 'tcp', host: '127.0.0.1', port: await freePort() } };
        break;
      case 'redis':
        options = { ...common, transport: { kind: 'redis', url: REDIS_URL } };
        break;
      case 'rabbitmq':
        options = { ...common, transport: { kind: 'rabbitmq', url: RABBITMQ_URL } };
        break;
      case 'nats':
        options = { ...common, transport: { kind: 'nats', url: NATS_URL } };
        break;
    }
    started = await startApp(TracedParticipantApp.with(db.url, options));
    if (kind === 'http') {
      send = async (call, traceHeaders, signWith = key) => {
        const status = await post(`${started.url}/tx/${call.action}/${call.phase}`, JSON.stringify(call), { 'content-type': 'application/json', ...sign(signWith, call), ...traceHeaders });
        if (status !== 200) throw new Error(`answered ${status}`);
        return status;
      };
      return;
    }
    const transport = options.transport;
    let pattern: string | Record<string, string>;
    if (transport?.kind === 'tcp') {
      client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port: transport.port } });
      pattern = BRANCH_MESSAGE_PATTERN;
    } else if (kind === 'redis') {
      client = ClientProxyFactory.create({ transport: Transport.REDIS, options: redisTransportOptions(REDIS_URL) });
      pattern = redisBranchPattern(name);
    } else if (kind === 'rabbitmq') {
      client = ClientProxyFactory.create({ transport: Transport.RMQ, options: { urls: [RABBITMQ_URL], queue: rabbitmqParticipantQueue(name), noAssert: true } });
      pattern = BRANCH_MESSAGE_PATTERN;
    } else {
      client = ClientProxyFactory.create({ transport: Transport.NATS, options: natsConnectionOptions(NATS_URL) });
      pattern = natsBranchSubject(name);
    }
    await client.connect();
    const connected = client;
    // The trace context in the data's `headers` member, beside the three signature values (what messageTraceHeaders reads).
    send = (call, traceHeaders, signWith = key) =>
      firstValueFrom(connected.send<unknown>(pattern, { ...call, headers: { ...sign(signWith, call), ...traceHeaders } }).pipe(timeout(5_000)));
  });

  afterAll(async () => {
    await client?.close();
    await started?.app.close();
  });

  it('the handle span is the child of the call sent, the business\'s span its child, with the call\'s attributes', async () => {
    await send(creditCall(gid('traced')), { traceparent: REMOTE_PARENT.traceparent, tracestate: 'dtx=coordinator' });
    expect(await written(gid('traced'))).toBe(1);
    const handle = tracing.span('dtx.handle credit/execute');
    expect(handle.kind).toBe(kind === 'rabbitmq' || kind === 'nats' ? SpanKind.CONSUMER : SpanKind.SERVER);
    expect(handle.spanContext().traceId).toBe(REMOTE_PARENT.traceId);
    expect(handle.parentSpanContext).toMatchObject({ traceId: REMOTE_PARENT.traceId, spanId: REMOTE_PARENT.spanId, isRemote: true });
    expect(handle.spanContext().traceState?.get('dtx')).toBe('coordinator');
    expect(handle.attributes).toEqual({
      ...expectedTransportAttributes(kind, name),
      'dtx.gid': gid('traced'),
      'dtx.branch_id': 'b1',
      'dtx.mode': 'saga',
      'dtx.action': 'credit',
      'dtx.phase': 'execute',
      'dtx.outcome': 'ok',
    });
    expect(handle.status.code).toBe(SpanStatusCode.UNSET);
    const business = tracing.span('business');
    expect(business.spanContext().traceId).toBe(REMOTE_PARENT.traceId);
    expect(business.parentSpanContext?.spanId).toBe(handle.spanContext().spanId);
  });

  it('a call without a traceparent still runs, in a trace of its own', async () => {
    await send(creditCall(gid('untraced')), {});
    expect(await written(gid('untraced'))).toBe(1);
    const handle = tracing.span('dtx.handle credit/execute');
    expect(handle.parentSpanContext).toBeUndefined();
    expect(handle.spanContext().traceId).not.toBe(REMOTE_PARENT.traceId);
    expect(tracing.span('business').parentSpanContext?.spanId).toBe(handle.spanContext().spanId);
  });

  it('a refused signature has its span, refused, and runs nothing', async () => {
    await expect(send(creditCall(gid('forged')), { traceparent: REMOTE_PARENT.traceparent }, randomBytes(32))).rejects.toBeDefined();
    expect(await written(gid('forged'))).toBe(0);
    const refused = tracing.span('dtx.handle');
    expect(refused.parentSpanContext?.spanId).toBe(REMOTE_PARENT.spanId);
    expect(refused.attributes).toMatchObject({ 'dtx.outcome': 'refused', 'error.type': 'SIGNATURE_INVALID', ...(kind === 'http' ? { 'http.response.status_code': 401 } : {}) });
    expect(refused.attributes).not.toHaveProperty('dtx.gid');
    expect(refused.status.code).toBe(SpanStatusCode.ERROR);
    expect(tracing.spans().map((span: ReadableSpan) => span.name)).toEqual(['dtx.handle']);
  });
});

describe('a participant on http, answering other than ok', () => {
  let started: StartedApp;
  const send = (call: PhaseCallBody) =>
    post(`${started.url}/tx/${call.action}/${call.phase}`, JSON.stringify(call), { 'content-type': 'application/json', ...sign(key, call), traceparent: REMOTE_PARENT.traceparent });

  beforeAll(async () => {
    started = await startApp(TracedParticipantApp.with(db.url, { name: `trace-http-errors-${run}`, coordinatorUrl: 'http://127.0.0.1:1', register: false, signingSecret }));
  });

  afterAll(async () => {
    await started?.app.close();
  });

  it('a business refusal is failed (409), an exception an error (500) with the exception recorded', async () => {
    expect(await send({ ...creditCall(`trace-refuse-${run}`), payload: { refuse: true } })).toBe(409);
    expect(await send({ ...creditCall(`trace-explode-${run}`), payload: { explode: true } })).toBe(500);
    const [refused, exploded] = tracing.spans().filter((span) => span.name === 'dtx.handle credit/execute');
    expect(refused.attributes).toMatchObject({ 'dtx.outcome': 'failed', 'error.type': 'BUSINESS_FAILURE', 'http.response.status_code': 409, 'dtx.gid': `trace-refuse-${run}` });
    expect(refused.status.code).toBe(SpanStatusCode.ERROR);
    expect(exploded.attributes).toMatchObject({ 'dtx.outcome': 'error', 'error.type': 'INTERNAL', 'http.response.status_code': 500 });
    expect(exploded.events.map((event) => event.attributes?.['exception.message'])).toEqual(['the ledger exploded']);
    // The business's spans sit under each, though it threw.
    const business = tracing.spans().filter((span) => span.name === 'business');
    expect(business.map((span) => span.parentSpanContext?.spanId)).toEqual([refused.spanContext().spanId, exploded.spanContext().spanId]);
  });
});

describe('TransactionClient', () => {
  it('begin sends the coordinator a traceparent in the caller\'s trace, the client span its parent', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const coordinator = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ gid: 'g', mode: 'saga', status: 'prepared', branches: [] })));
    });
    await new Promise<void>((resolve) => coordinator.listen(0, '127.0.0.1', resolve));
    try {
      const client = new TransactionClient({ coordinatorUrl: `http://127.0.0.1:${(coordinator.address() as AddressInfo).port}` });
      const caller = await trace.getTracer('app').startActiveSpan('place order', async (span) => {
        await client.begin({ mode: 'saga', gid: `client-${run}`, steps: [] });
        span.end();
        return span.spanContext();
      });
      const [, traceId, parentId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(seen[0]?.traceparent)) ?? [];
      expect(traceId).toBe(caller.traceId);
      const begin = tracing.span('dtx.client begin');
      expect(parentId).toBe(begin.spanContext().spanId);
      expect(begin.parentSpanContext?.spanId).toBe(caller.spanId);
      expect(begin.attributes).toMatchObject({ 'dtx.gid': `client-${run}`, 'dtx.mode': 'saga', 'http.request.method': 'POST', 'http.response.status_code': 201 });
    } finally {
      await new Promise<void>((resolve) => coordinator.close(() => resolve()));
    }
  });
});
