/**
 * A real NestJS app hosting a workflow through DtxParticipantModule, against a coordinator played
 * by a node:http server on 127.0.0.1 with the answers of PROTOCOL.md 3.7: the @Workflow method is
 * found and registered with mode workflow, WorkflowClient runs it over the HTTP port, and a
 * signed resume call reaches the runner (202 while it runs, 200 once it decided).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Injectable, Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { callId, formatSigningSecret, signCall, type Json, type JsonObject, type PhaseCallBody } from '@nest-dtx/protocol';
import { ongoingOutcome, type BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import type { BusinessWork, DtxDataLayer } from '../data-layers/core/data-layer.js';
import { isOngoingAnswer } from '../data-layers/core/ongoing-answer.js';
import { SagaAction, TransactionParticipant } from '../participant/decorators.js';
import { DtxParticipantModule } from '../participant/participant.module.js';
import { WorkflowClient } from './workflow-client.js';
import type { WorkflowContext } from './workflow-context.js';
import { Workflow } from './workflow.decorator.js';
import { freePort } from '../../../../scripts/lib/stack.js';

interface Step {
  branchId: string;
  kind: string;
  participant: string | null;
  action: string | null;
  status: string;
  attempts: number;
  lastError: Json;
  result: Json;
}

interface Transaction {
  gid: string;
  mode: string;
  status: string;
  reason: string | null;
  input: Json;
  result: Json;
  workflow: { participant: string; name: string };
  branches: Step[];
}

/** The coordinator, as far as a workflow host sees it: registration, begin, steps, read, commit, rollback. */
class WorkflowCoordinatorServer {
  readonly key = randomBytes(32);
  readonly registrations: { name: string; actions: { name: string; modes: string[] }[] }[] = [];
  readonly transactions = new Map<string, Transaction>();
  /** What each participant action's phase 1 answers (every one succeeds here). */
  readonly results = new Map<string, Json>([
    ['inventory/reserve', { reserved: 1 }],
    ['shipping/ship', { tracking: 't-1' }],
  ]);
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

  /** Begins a workflow as another process would (or a client without the SDK). */
  begin(gid: string, name: string, input: Json): void {
    this.transactions.set(gid, { gid, mode: 'workflow', status: 'active', reason: null, input, result: null, workflow: { participant: 'orders', name }, branches: [] });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = (text ? JSON.parse(text) : {}) as JsonObject;
      const [status, answer] = this.answer(req.method!, req.url!, body);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  }

  private answer(method: string, path: string, body: JsonObject): [number, unknown] {
    if (method === 'POST' && path === '/v1/participants') {
      this.registrations.push(body as unknown as WorkflowCoordinatorServer['registrations'][number]);
      return [201, { ...body, signingSecret: formatSigningSecret(this.key) }];
    }
    if (method === 'POST' && path === '/v1/transactions') {
      const gid = body.gid as string;
      if (this.transactions.has(gid)) return [200, this.transactions.get(gid)];
      this.begin(gid, (body.workflow as { name: string }).name, body.input);
      return [201, this.transactions.get(gid)];
    }
    const match = /^\/v1\/transactions\/([^/]+)(?:\/(steps|commit|rollback))?$/.exec(path);
    const tx = match ? this.transactions.get(decodeURIComponent(match[1])) : undefined;
    if (!tx) return [404, { statusCode: 404, error: 'TX_NOT_FOUND', message: 'no such transaction' }];
    if (method === 'GET') return [200, tx];
    if (match![2] === 'steps') {
      const stepId = body.stepId as string;
      const existing = tx.branches.find((b) => b.branchId === stepId);
      if (existing) return [201, { branchId: stepId, status: existing.status, result: existing.result }];
      const local = body.kind === 'local';
      const result = local ? body.result : (this.results.get(`${body.participant as string}/${body.action as string}`) ?? null);
      const participant = local ? null : (body.participant as string);
      const action = local ? null : (body.action as string);
      tx.branches.push({ branchId: stepId, kind: body.kind as string, participant, action, status: 'prepared', attempts: local ? 0 : 1, lastError: null, result });
      return [201, { branchId: stepId, status: 'prepared', result }];
    }
    if (match![2] === 'commit') Object.assign(tx, { status: 'committed', result: body.result ?? null });
    else Object.assign(tx, { status: 'rolled_back', reason: 'client' });
    return [200, tx];
  }
}

/** Runs every phase with no database: the workflow host needs none of its own here. */
class NoDatabase implements DtxDataLayer<null> {
  readonly description = 'no database';
  async runPhase(_call: PhaseCallBody, work: BusinessWork<null>): Promise<BarrierOutcome> {
    const answer = await work(null);
    if (isOngoingAnswer(answer)) return ongoingOutcome(answer);
    return { kind: 'ok', result: answer ?? null, duplicate: false, skipped: false };
  }
  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

type OrderInput = { orderId: string; amount: number };

@Injectable()
class OrderWorkflows {
  /** Lets a test hold a run inside its local step. */
  gate: Promise<void> = Promise.resolve();
  runs = 0;

  @Workflow('placeOrder')
  async placeOrder(wf: WorkflowContext<OrderInput>) {
    this.runs += 1;
    const stock = await wf.tcc<{ reserved: number }>('inventory', 'reserve', { sku: 'x', qty: 1 });
    const picked = await wf.local(
      async () => {
        await this.gate;
        return 4;
      },
      { stepId: 'pick-number' },
    );
    const shipping = await wf.saga('shipping', 'ship', { orderId: wf.input.orderId, qty: stock.reserved });
    return { shipped: true, picked, shipping };
  }
}

/** The same app is also a plain participant, with a saga action. */
@Injectable()
@TransactionParticipant()
class Shipping {
  @SagaAction({ name: 'ship', compensate: 'unship' })
  ship(): Json {
    return null;
  }
  unship(): void {}
}

@Module({})
class HostApp {
  static with(coordinatorUrl: string, publicUrl: string): DynamicModule {
    return {
      module: HostApp,
      imports: [DtxParticipantModule.forRoot({ name: 'orders', coordinatorUrl, publicUrl, dataLayer: new NoDatabase(), registrationRefreshMs: 0, registerWaitMs: 5_000 })],
      providers: [OrderWorkflows, Shipping],
    };
  }
}

const started: { app: INestApplication; coordinator: WorkflowCoordinatorServer }[] = [];

afterEach(async () => {
  for (const { app, coordinator } of started.splice(0)) {
    await app.close();
    await coordinator.stop();
  }
});


async function startHost(platform: 'express' | 'fastify' = 'express') {
  const coordinator = new WorkflowCoordinatorServer();
  await coordinator.start();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const module = HostApp.with(coordinator.url, url);
  const options = { rawBody: true, logger: false as const, abortOnError: false };
  const app = platform === 'fastify' ? await NestFactory.create(module, new FastifyAdapter(), options) : await NestFactory.create(module, options);
  await app.listen(port, '127.0.0.1');
  started.push({ app, coordinator });
  return { app, coordinator, url, workflows: app.get(OrderWorkflows), client: app.get(WorkflowClient) };
}

/** The coordinator's resume call (3.7: body as 5.1, phase resume, payload = input), signed as 5.5. */
async function resume(url: string, key: Buffer, gid: string, payload: Json, action = 'placeOrder') {
  const body: PhaseCallBody = { gid, branchId: 'resume', mode: 'workflow', action, phase: 'resume', payload };
  const text = JSON.stringify(body);
  const response = await fetch(`${url}/tx/${action}/resume`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signCall([key], callId(body), Date.now() / 1000, text) },
    body: text,
  });
  return { status: response.status, body: (await response.json()) };
}

const input: OrderInput = { orderId: 'o-1', amount: 30 };

describe('a workflow host (DtxParticipantModule with @Workflow)', () => {
  it('registers each workflow as an action with mode workflow, next to its other actions', async () => {
    const { coordinator } = await startHost();
    const actions = coordinator.registrations[0].actions;
    expect(actions).toContainEqual({ name: 'placeOrder', modes: ['workflow'] });
    expect(actions).toContainEqual({ name: 'ship', modes: ['saga'] });
  });

  it('runs a workflow started with WorkflowClient.run over HTTP: its steps recorded in call order, its result committed', async () => {
    const { coordinator, client } = await startHost();
    const result = await client.run<{ shipped: boolean }>('placeOrder', input, { gid: 'host-1', timeoutMs: 60_000 });
    expect(result).toEqual({ shipped: true, picked: 4, shipping: { tracking: 't-1' } });
    const tx = coordinator.transactions.get('host-1')!;
    expect(tx).toMatchObject({ status: 'committed', workflow: { participant: 'orders', name: 'placeOrder' }, input, result });
    expect(tx.branches.map((b) => `${b.branchId}:${b.kind}`)).toEqual(['1:tcc', 'pick-number:local', '3:saga']);
  });

  it('answers a signed resume 202 while the run goes on, then 200 once it decided; one run for both resumes', async () => {
    const { coordinator, url, workflows } = await startHost();
    let release!: () => void;
    workflows.gate = new Promise<void>((resolve) => (release = resolve));
    coordinator.begin('host-2', 'placeOrder', input);

    const [first, second] = await Promise.all([resume(url, coordinator.key, 'host-2', input), resume(url, coordinator.key, 'host-2', input)]);
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(first.body).toEqual({});
    release();
    await expect.poll(() => coordinator.transactions.get('host-2')!.status).toBe('committed');
    expect(await resume(url, coordinator.key, 'host-2', input)).toEqual({ status: 200, body: { status: 'committed', result: { shipped: true, picked: 4, shipping: { tracking: 't-1' } } } });
    expect(workflows.runs).toBe(1);
  });

  it('answers 202 on Fastify too', async () => {
    const { coordinator, url, workflows } = await startHost('fastify');
    let release!: () => void;
    workflows.gate = new Promise<void>((resolve) => (release = resolve));
    coordinator.begin('host-3', 'placeOrder', input);
    expect((await resume(url, coordinator.key, 'host-3', input)).status).toBe(202);
    release();
    await expect.poll(() => coordinator.transactions.get('host-3')!.status).toBe('committed');
  });

  it('refuses an unsigned resume (401) and a resume of a workflow it does not host (400)', async () => {
    const { coordinator, url } = await startHost();
    coordinator.begin('host-4', 'placeOrder', input);
    const unsigned = await fetch(`${url}/tx/placeOrder/resume`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ gid: 'host-4', branchId: 'resume', mode: 'workflow', action: 'placeOrder', phase: 'resume', payload: input }),
    });
    expect(unsigned.status).toBe(401);
    expect(await resume(url, coordinator.key, 'host-4', input, 'cancelOrder')).toMatchObject({ status: 400, body: { error: 'INVALID_PHASE_CALL', message: 'no workflow cancelOrder is hosted here' } });
    expect(coordinator.transactions.get('host-4')!.branches).toEqual([]);
  });
});
