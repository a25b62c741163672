/**
 * Long-running answers end to end (PROTOCOL.md 3.6): a real NestJS participant (the SDK's
 * DtxParticipantModule on a real Postgres) whose action answers `ongoing()`, called by the
 * coordinator's own transports over real sockets (HTTP, and TCP): the 202 / `{ outcome:
 * 'ongoing' }` reaches the coordinator as an ongoing outcome with its hint, the same call runs
 * the method again until it answers for good, a cancel after an ongoing try runs the real
 * compensation and a late try is refused, and an XaAction that answers ongoing is refused as a
 * participant bug (500 ONGOING_NOT_SUPPORTED) with nothing kept.
 */
import { randomBytes } from 'node:crypto';
import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callId, formatSigningSecret, signCall, type Json, type Mode, type Phase, type PhaseCallBody } from '@nest-dtx/protocol';
import {
  BusinessFailure,
  DtxParticipantModule,
  TccAction,
  TransactionParticipant,
  XaAction,
  ongoing,
  queryRows,
  type BranchContext,
  type OngoingAnswer,
  type ParticipantModuleOptions,
} from '@nest-dtx/sdk';
import { HttpParticipantTransport } from '../../apps/coordinator/src/invoker/http-participant.transport.js';
import { MicroserviceParticipantTransport } from '../../apps/coordinator/src/invoker/microservice-participant.transport.js';
import { EgressPolicy } from '../../apps/coordinator/src/participants/egress-policy.js';
import type { ParticipantRecord } from '../../apps/coordinator/src/store/records.js';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';
import { freePort, startApp, type StartedApp } from '../support/signed-participant.js';

const key = randomBytes(32);
const run = randomBytes(3).toString('hex');
const LOOPBACK = EgressPolicy.parse('loopback');
const CALL_TIMEOUT_MS = 5_000;

/** Requests a person decides on (decision: waiting, approved, refused), and what each phase did. */
const DDL = [
  `CREATE TABLE approvals (request_id text PRIMARY KEY, decision text NOT NULL)`,
  `CREATE TABLE approval_log (id serial PRIMARY KEY, request_id text NOT NULL, entry text NOT NULL)`,
];

type Request = { requestId: string };
const requestOf = (payload: Json): string => (payload as Request).requestId;

/** A TCC action that waits for a person's decision, and an XaAction that (wrongly) answers ongoing. */
@Injectable()
@TransactionParticipant()
class Approvals {
  @TccAction({ name: 'approve', confirm: 'confirmApproval', cancel: 'cancelApproval' })
  async requestApproval(payload: Json, { manager }: BranchContext): Promise<Json | OngoingAnswer> {
    const requestId = requestOf(payload);
    await manager.query(`INSERT INTO approvals (request_id, decision) VALUES ($1, 'waiting') ON CONFLICT (request_id) DO NOTHING`, [requestId]);
    const [{ decision }] = await queryRows<{ decision: string }>(manager, 'SELECT decision FROM approvals WHERE request_id = $1', [requestId]);
    await manager.query('INSERT INTO approval_log (request_id, entry) VALUES ($1, $2)', [requestId, `try:${decision}`]);
    if (decision === 'refused') throw new BusinessFailure(`request ${requestId} was refused`, { reason: 'refused' });
    if (decision === 'approved') return { requestId, approved: true };
    // No hint for requests named so: the participant answers `{}`.
    return requestId.includes('no-hint') ? ongoing() : ongoing({ retryAfterMs: 1500 });
  }

  async confirmApproval(payload: Json, { manager }: BranchContext): Promise<void> {
    await manager.query('INSERT INTO approval_log (request_id, entry) VALUES ($1, $2)', [requestOf(payload), 'confirm']);
  }

  async cancelApproval(payload: Json, { manager }: BranchContext): Promise<void> {
    await manager.query(`UPDATE approvals SET decision = 'withdrawn' WHERE request_id = $1`, [requestOf(payload)]);
    await manager.query('INSERT INTO approval_log (request_id, entry) VALUES ($1, $2)', [requestOf(payload), 'cancel']);
  }

  @XaAction({ name: 'reserve' })
  async reserve(payload: Json, { manager }: BranchContext): Promise<OngoingAnswer> {
    await manager.query('INSERT INTO approval_log (request_id, entry) VALUES ($1, $2)', [requestOf(payload), 'reserve']);
    return ongoing();
  }
}

@Module({})
class ApprovalsApp {
  static with(databaseUrl: string, options: ParticipantModuleOptions): DynamicModule {
    return {
      module: ApprovalsApp,
      imports: [TypeOrmModule.forRoot({ type: 'postgres', url: databaseUrl, synchronize: false, retryAttempts: 0 }), DtxParticipantModule.forRoot(options)],
      providers: [Approvals],
    };
  }
}

let db: TestDatabase;
let dataSource: DataSource;
let participant: StartedApp;
let tcpPort: number;
const http = new HttpParticipantTransport(LOOPBACK);
const microservices = new MicroserviceParticipantTransport(undefined, LOOPBACK);
const name = `approvals-${run}`;

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('ongoing', DDL));
  tcpPort = await freePort();
  // One app on both transports: HTTP (always listening) and TCP (its `transport`).
  participant = await startApp(
    ApprovalsApp.with(db.url, {
      name,
      coordinatorUrl: 'http://127.0.0.1:1',
      register: false,
      signingSecret: formatSigningSecret(key),
      transport: { kind: 'tcp', host: '127.0.0.1', port: tcpPort },
    }),
  );
});

afterAll(async () => {
  http.close();
  await microservices.close();
  await participant?.app.close();
  await dataSource?.destroy();
  await db?.drop();
});

const body = (gid: string, mode: Mode, action: string, phase: Phase): PhaseCallBody => ({ gid, branchId: 'b1', mode, action, phase, payload: { requestId: gid } });
const tcpParticipant = (): ParticipantRecord => ({
  name,
  transport: 'tcp',
  endpoint: null,
  host: '127.0.0.1',
  port: tcpPort,
  publish: false,
  actions: [],
  ownerKeyDigest: null,
  secretGeneration: 1,
  previousSecretGeneration: null,
  previousSecretUntil: null,
  callHeaders: {},
  maxInFlight: null,
  updatedAt: new Date(),
});

/** The coordinator's call of one phase, over HTTP or TCP. */
const transports = {
  http: (call: PhaseCallBody) => http.call(`${participant.url}/tx`, call, CALL_TIMEOUT_MS, { sender: 'test', keys: [key], headers: {} }),
  tcp: (call: PhaseCallBody) => microservices.call(tcpParticipant(), call, CALL_TIMEOUT_MS, [key]),
};

const decide = (requestId: string, decision: 'approved' | 'refused') => dataSource.query('UPDATE approvals SET decision = $2 WHERE request_id = $1', [requestId, decision]);
const log = async (requestId: string) =>
  (await dataSource.query<{ entry: string }[]>('SELECT entry FROM approval_log WHERE request_id = $1 ORDER BY id', [requestId])).map((row) => row.entry);

describe.each(['http', 'tcp'] as const)('an SDK participant answering ongoing, over %s', (transport) => {
  const send = transports[transport];
  const gid = (label: string) => `${transport}-${run}-${label}`;

  it('answers ongoing with its hint; the same call runs the method again until it answers for good; a duplicate then replays the result', async () => {
    const g = gid('approved');
    const tryCall = body(g, 'tcc', 'approve', 'try');
    expect(await send(tryCall)).toEqual({ kind: 'ongoing', retryAfterMs: 1500 });
    expect(await send(tryCall)).toEqual({ kind: 'ongoing', retryAfterMs: 1500 });
    await decide(g, 'approved');
    expect(await send(tryCall)).toEqual({ kind: 'ok', result: { requestId: g, approved: true } });
    expect(await send(tryCall)).toEqual({ kind: 'ok', result: { requestId: g, approved: true } });
    expect(await send(body(g, 'tcc', 'approve', 'confirm'))).toMatchObject({ kind: 'ok' });
    // The waiting calls' writes committed; the duplicate after the result ran nothing.
    expect(await log(g)).toEqual(['try:waiting', 'try:waiting', 'try:approved', 'confirm']);
  });

  it('answers ongoing without a hint when the method gives none', async () => {
    expect(await send(body(gid('no-hint'), 'tcc', 'approve', 'try'))).toEqual({ kind: 'ongoing' });
  });

  it('a refusal after ongoing is a 409; the cancel runs the real compensation, and a late try is refused', async () => {
    const g = gid('refused');
    const tryCall = body(g, 'tcc', 'approve', 'try');
    expect(await send(tryCall)).toMatchObject({ kind: 'ongoing' });
    await decide(g, 'refused');
    expect(await send(tryCall)).toMatchObject({ kind: 'failed' });
    expect(await send(body(g, 'tcc', 'approve', 'cancel'))).toMatchObject({ kind: 'ok' });
    expect(await send(tryCall)).toMatchObject({ kind: 'failed' });
    expect(await log(g)).toEqual(['try:waiting', 'cancel']);
  });

  it('a cancel while the try is ongoing runs the real compensation, and the try that comes after is refused (anti-hanging)', async () => {
    const g = gid('cancelled');
    const tryCall = body(g, 'tcc', 'approve', 'try');
    expect(await send(tryCall)).toMatchObject({ kind: 'ongoing' });
    expect(await send(body(g, 'tcc', 'approve', 'cancel'))).toMatchObject({ kind: 'ok' });
    await decide(g, 'approved');
    expect(await send(tryCall)).toMatchObject({ kind: 'failed' });
    expect(await log(g)).toEqual(['try:waiting', 'cancel']);
  });

  it('refuses ongoing from an XaAction as a participant bug: transient, ONGOING_NOT_SUPPORTED, nothing kept, logged', async () => {
    const g = gid('xa');
    const outcome = await send(body(g, '2pc', 'reserve', 'prepare'));
    expect(outcome).toMatchObject({ kind: 'transient', error: expect.stringContaining('ONGOING_NOT_SUPPORTED') });
    expect(await log(g)).toEqual([]);
    expect(await dataSource.query('SELECT 1 FROM pg_prepared_xacts WHERE database = current_database()')).toEqual([]);
    expect(participant.logger.lines).toContainEqual({ level: 'error', message: expect.stringContaining(`participant bug: reserve/prepare of ${g}/b1: an XaAction cannot answer ongoing()`) });
  });
});

/** POSTs a call signed as the coordinator signs it to `url`; the status and the body's text as they came. */
async function rawAt(url: string, call: PhaseCallBody): Promise<{ status: number; contentType: string | null; text: string }> {
  const payload = JSON.stringify(call);
  const response = await fetch(`${url}/tx/${call.action}/${call.phase}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signCall([key], callId(call), Date.now() / 1000, payload) },
    body: payload,
  });
  return { status: response.status, contentType: response.headers.get('content-type'), text: await response.text() };
}

describe('the HTTP answer itself', () => {
  const raw = (call: PhaseCallBody) => rawAt(participant.url, call);

  it('is 202 with { "retryAfterMs" } or {}, as JSON', async () => {
    expect(await raw(body(`raw-${run}-hint`, 'tcc', 'approve', 'try'))).toEqual({ status: 202, contentType: 'application/json; charset=utf-8', text: '{"retryAfterMs":1500}' });
    expect(await raw(body(`raw-${run}-no-hint`, 'tcc', 'approve', 'try'))).toEqual({ status: 202, contentType: 'application/json; charset=utf-8', text: '{}' });
  });

  it('is still 200 with the result as JSON for a final answer, and 500 ONGOING_NOT_SUPPORTED for an XaAction', async () => {
    const g = `raw-${run}-final`;
    await raw(body(g, 'tcc', 'approve', 'try'));
    await decide(g, 'approved');
    expect(await raw(body(g, 'tcc', 'approve', 'try'))).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', text: JSON.stringify({ requestId: g, approved: true }) });
    const refused = await raw(body(`raw-${run}-xa`, '2pc', 'reserve', 'prepare'));
    expect(refused.status).toBe(500);
    expect(JSON.parse(refused.text)).toMatchObject({ statusCode: 500, error: 'ONGOING_NOT_SUPPORTED' });
  });
});

describe('on Fastify', () => {
  let fastify: StartedApp;

  beforeAll(async () => {
    fastify = await startApp(
      ApprovalsApp.with(db.url, { name: `approvals-fastify-${run}`, coordinatorUrl: 'http://127.0.0.1:1', publicUrl: 'http://127.0.0.1:1', register: false, signingSecret: formatSigningSecret(key) }),
      { platform: 'fastify' },
    );
  });

  afterAll(async () => {
    await fastify?.app.close();
  });

  it('answers 202 { "retryAfterMs" } as on Express, then 200 with the result', async () => {
    const g = `fastify-${run}`;
    const call = body(g, 'tcc', 'approve', 'try');
    expect(await rawAt(fastify.url, call)).toEqual({ status: 202, contentType: 'application/json; charset=utf-8', text: '{"retryAfterMs":1500}' });
    await decide(g, 'approved');
    expect(await rawAt(fastify.url, call)).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', text: JSON.stringify({ requestId: g, approved: true }) });
  });
});
