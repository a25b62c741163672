/**
 * How a participant gets and keeps its signing secret (PROTOCOL.md 4, 5.5): from every
 * registration answer, again every `registrationRefreshMs`, and again (at most every 10 s)
 * when a call was refused for a signature it could not match; a coordinator that refuses the
 * registration (403: the name is another key's) is said once and does not stop the app. The
 * coordinator is a small real HTTP server standing in for the one being changed to sign.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSigningSecret } from '@nest-dtx/protocol';
import type { ParticipantModuleOptions } from '@nest-dtx/sdk';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';
import { closeServer } from '../support/servers.js';
import { creditCall, LEDGER_DDL, sign, startParticipant, type StartedParticipant } from '../support/signed-participant.js';

type Mode = 'ok' | 'forbidden' | 'no-secret';

/** The registry part of a coordinator: one secret per name, and how often each name registered. */
class FakeCoordinator {
  readonly keys = new Map<string, Buffer>();
  readonly modes = new Map<string, Mode>();
  readonly registrations = new Map<string, number>();
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await closeServer(this.server);
  }

  count(name: string): number {
    return this.registrations.get(name) ?? 0;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; transport: string; endpoint?: string };
      this.registrations.set(body.name, this.count(body.name) + 1);
      const answer = (status: number, json: object) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      const mode = this.modes.get(body.name) ?? 'ok';
      if (mode === 'forbidden') return answer(403, { statusCode: 403, error: 'FORBIDDEN', message: `participant ${body.name} belongs to another API key` });
      const view = { name: body.name, transport: body.transport, endpoint: body.endpoint ?? null, host: null, port: null, actions: [], updatedAt: new Date().toISOString() };
      if (mode === 'no-secret') return answer(201, view);
      let key = this.keys.get(body.name);
      if (!key) this.keys.set(body.name, (key = randomBytes(32)));
      answer(201, { ...view, signingSecret: formatSigningSecret(key) });
    });
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let db: TestDatabase;
let dataSource: DataSource;
const coordinator = new FakeCoordinator();
const run = randomBytes(3).toString('hex');
const started: StartedParticipant[] = [];

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('registration', [LEDGER_DDL]));
  await coordinator.start();
});

afterAll(async () => {
  for (const participant of started) await participant.app.close();
  await coordinator.stop();
  await dataSource?.destroy();
  await db?.drop();
});

async function participant(name: string, over: Partial<ParticipantModuleOptions> = {}): Promise<StartedParticipant> {
  const options: ParticipantModuleOptions = { name, coordinatorUrl: coordinator.url, publicUrl: 'http://127.0.0.1:4999', registerWaitMs: 2_000, ...over };
  const app = await startParticipant(db.url, options);
  started.push(app);
  return app;
}

/** Sends a credit call signed with `key`, as the coordinator would; answers the HTTP status. */
async function call(target: StartedParticipant, key: Buffer, gid: string): Promise<number> {
  const body = creditCall(gid);
  const response = await fetch(`${target.url}/tx/credit/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...sign(key, body) },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('participant registration and its signing secret', () => {
  it('verifies with the secret of its registration; after a rotation it re-registers on the first refused call, and the revoked secret stops working', async () => {
    const name = `rotating-${run}`;
    const target = await participant(name, { registrationRefreshMs: 0 });
    expect(coordinator.count(name)).toBe(1);
    const first = coordinator.keys.get(name)!;
    expect(await call(target, first, `${name}-1`)).toBe(200);

    // The operator rotates and the old secret is revoked: the coordinator signs with the new one only.
    const second = randomBytes(32);
    coordinator.keys.set(name, second);
    expect(await call(target, second, `${name}-2`)).toBe(401);
    await waitFor(() => coordinator.count(name) === 2);
    await waitFor(async () => (await call(target, second, `${name}-2`)) === 200);
    expect(await call(target, first, `${name}-3`)).toBe(401);
    expect(target.logger.lines.some((line) => line.message.includes('rotated the signing secret'))).toBe(true);

    // A flood of forged calls does not make it hammer the coordinator: at most one registration per 10 s.
    for (let i = 0; i < 20; i++) expect(await call(target, randomBytes(32), `${name}-forged-${i}`)).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(coordinator.count(name)).toBe(2);
    expect(target.ledger.calls).toEqual([`${name}-1/execute`, `${name}-2/execute`]);
  });

  it('picks up a rotated secret by registering again every registrationRefreshMs, before any call is refused', async () => {
    const name = `refreshing-${run}`;
    const target = await participant(name, { registrationRefreshMs: 1_000 });
    const revoked = coordinator.keys.get(name)!;
    expect(await call(target, revoked, `${name}-0`)).toBe(200);
    // A rotation with no overlap (a revocation): the coordinator hands out only the new secret from now on.
    const rotated = randomBytes(32);
    coordinator.keys.set(name, rotated);
    const rotatedAt = Date.now();
    const before = coordinator.count(name);
    await waitFor(() => coordinator.count(name) > before);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Within the bound (registrationRefreshMs, plus the registration's own round trip) the old secret no longer works.
    expect(await call(target, revoked, `${name}-old`)).toBe(401);
    expect(Date.now() - rotatedAt).toBeLessThan(1_000 + 1_000);
    expect(await call(target, rotated, `${name}-1`)).toBe(200);
  });

  it('when the coordinator refuses the name (403 FORBIDDEN), says why in one error line, keeps running, and does not retry fast', async () => {
    const name = `owned-${run}`;
    coordinator.modes.set(name, 'forbidden');
    const target = await participant(name, { registerWaitMs: 300 });
    const errors = target.logger.lines.filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toContain('403 FORBIDDEN');
    expect(errors[0].message).toContain(`the name "${name}" is owned by another API key, and an operator must release it`);
    expect(target.logger.lines.some((line) => line.level === 'warn' && line.message.includes('the coordinator refused'))).toBe(true);
    // Up, refusing calls (it has no secret), and neither its retries nor those calls hammer the coordinator.
    for (let i = 0; i < 5; i++) expect(await call(target, randomBytes(32), `${name}-${i}`)).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(coordinator.count(name)).toBe(1);
    expect(target.logger.lines.filter((line) => line.level === 'error')).toHaveLength(1);
  });

  it('says once that a coordinator answered without a signingSecret, and refuses calls SIGNATURE_NO_SECRET', async () => {
    const name = `unsigned-${run}`;
    coordinator.modes.set(name, 'no-secret');
    const target = await participant(name, { registrationRefreshMs: 1_000 });
    const body = creditCall(`${name}-1`);
    const response = await fetch(`${target.url}/tx/credit/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...sign(randomBytes(32), body) },
      body: JSON.stringify(body),
    });
    expect(await response.json()).toMatchObject({ statusCode: 401, error: 'SIGNATURE_NO_SECRET' });
    await waitFor(() => coordinator.count(name) >= 3);
    expect(target.logger.lines.filter((line) => line.message.includes('without a signingSecret'))).toHaveLength(1);
  });
});
