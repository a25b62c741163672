/**
 * The SDK's TransactionClient against a real HTTP server on loopback that loses answers and
 * fails the way a coordinator can: it sends a lost request again with the same gid / branchId
 * (so the coordinator finds the first one), to the next instance when it knows several, and
 * never resends what got a real answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorError, TransactionClient } from '@nest-dtx/sdk';

interface Received {
  path: string;
  body: Record<string, unknown>;
}

/** A stand-in coordinator: `answer` decides, per request number, what each request gets. */
async function fakeCoordinator(answer: (n: number, res: ServerResponse, body: Record<string, unknown>) => void): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      received.push({ path: req.url ?? '', body });
      answer(received.length, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('TransactionClient resends what got no answer, idempotently', () => {
  it('sends a begin whose answer was lost, then one that met STORE_UNAVAILABLE, again with the same client-chosen gid', async () => {
    const coordinator = await fakeCoordinator((n, res, body) => {
      if (n === 1) return res.destroy(); // the answer is lost
      if (n === 2) return json(res, 503, { statusCode: 503, error: 'STORE_UNAVAILABLE', message: 'the transaction log is unavailable' });
      json(res, 201, { gid: body.gid, mode: 'tcc', status: 'active', branches: [] });
    });
    const view = await new TransactionClient({ coordinatorUrl: coordinator.url }).begin({ mode: 'tcc' });

    expect(coordinator.received).toHaveLength(3);
    const gids = coordinator.received.map((r) => r.body.gid);
    expect(typeof gids[0]).toBe('string');
    expect(new Set(gids).size).toBe(1);
    expect(view.gid).toBe(gids[0]);
  });

  it('names an added branch itself, so a resent branch is the same branch', async () => {
    const coordinator = await fakeCoordinator((n, res, body) => (n === 1 ? res.destroy() : json(res, 201, { branchId: body.branchId, status: 'prepared', result: null })));
    const outcome = await new TransactionClient({ coordinatorUrl: coordinator.url }).addBranch('order-1', { participant: 'bank', action: 'debit' });

    expect(coordinator.received.map((r) => r.path)).toEqual(['/v1/transactions/order-1/branches', '/v1/transactions/order-1/branches']);
    const [first, second] = coordinator.received.map((r) => r.body.branchId);
    expect(first).toMatch(/^b-[0-9a-f-]{36}$/);
    expect(second).toBe(first);
    expect(outcome.branchId).toBe(first);
  });

  it('keeps a gid and a branchId the caller chose', async () => {
    const coordinator = await fakeCoordinator((_n, res, body) => json(res, 201, { ...body, status: 'active', branches: [] }));
    const client = new TransactionClient({ coordinatorUrl: coordinator.url });
    await client.begin({ mode: 'tcc', gid: 'order-42' });
    await client.addBranch('order-42', { participant: 'bank', action: 'debit', branchId: 'debit-1' });
    expect(coordinator.received.map((r) => r.body.gid ?? r.body.branchId)).toEqual(['order-42', 'debit-1']);
  });

  it('never resends what got an answer: a refusal, a conflict or an unknown branch outcome come back at once', async () => {
    for (const [status, code] of [
      [409, 'BRANCH_FAILED'],
      [409, 'GID_CONFLICT'],
      [502, 'BRANCH_UNKNOWN'],
      [400, 'VALIDATION_FAILED'],
    ] as const) {
      const coordinator = await fakeCoordinator((_n, res) => json(res, status, { statusCode: status, error: code, message: code }));
      const failure = await new TransactionClient({ coordinatorUrl: coordinator.url }).begin({ mode: 'tcc' }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(CoordinatorError);
      expect((failure as CoordinatorError).code).toBe(code);
      expect(coordinator.received).toHaveLength(1);
    }
  });

  it('moves on to the next coordinator instance when one does not answer, with the same gid', async () => {
    const down = await fakeCoordinator((_n, res) => res.destroy());
    const up = await fakeCoordinator((_n, res, body) => json(res, 201, { gid: body.gid, mode: 'tcc', status: 'active', branches: [] }));
    const client = new TransactionClient({ coordinatorUrl: [down.url, up.url] });
    const view = await client.begin({ mode: 'tcc' });
    expect(down.received).toHaveLength(1);
    expect(up.received).toHaveLength(1);
    expect(up.received[0].body.gid).toBe(down.received[0].body.gid);
    expect(view.gid).toBe(down.received[0].body.gid);
    // It stays with the instance that answered.
    await client.begin({ mode: 'tcc', gid: 'next' });
    expect(down.received).toHaveLength(1);
    expect(up.received.map((r) => r.body.gid)).toEqual([view.gid, 'next']);
  });

  it('gives up after `retries` resends with the network error', async () => {
    const coordinator = await fakeCoordinator((_n, res) => res.destroy());
    const failure = await new TransactionClient({ coordinatorUrl: coordinator.url, retries: 1 }).begin({ mode: 'saga', steps: [] }).catch((e: unknown) => e);
    expect((failure as CoordinatorError).code).toBe('NETWORK');
    expect(coordinator.received).toHaveLength(2);
  });
});
