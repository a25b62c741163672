/**
 * The coordinator's HTTP participant transport over a real socket: a call never goes out after
 * its own deadline, even when the process stalled (a pause, a long GC) between creating the call
 * and writing it, so a paused instance cannot send a call after its lease ran out.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpParticipantTransport } from '../../apps/coordinator/src/invoker/http-participant.transport.js';

let server: Server;
let endpoint: string;
const received: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    received.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tx`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const body = (gid: string) => ({ gid, branchId: 'b1', mode: 'tcc' as const, action: 'debit', phase: 'confirm' as const, payload: {} });

/** Blocks the event loop, as SIGSTOP or a long pause would. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe('HttpParticipantTransport', () => {
  it('sends a call and maps 2xx to ok', async () => {
    const transport = new HttpParticipantTransport();
    expect(await transport.call(endpoint, body('t-1'), 1_000, 'test')).toEqual({ kind: 'ok', result: { ok: true } });
    transport.close();
  });

  it('does not send a call whose deadline passed while the process was stalled before writing it', async () => {
    const transport = new HttpParticipantTransport();
    // A first call leaves a kept-alive socket, so the next one gets it without connecting.
    await transport.call(endpoint, body('warm'), 1_000, 'test');
    const before = received.length;
    const late = transport.call(endpoint, body('stalled'), 100, 'test');
    stall(250);
    const outcome = await late;
    expect(outcome.kind).toBe('transient');
    await new Promise((r) => setTimeout(r, 100));
    expect(received.slice(before)).toEqual([]);
    // The transport still works afterwards.
    expect((await transport.call(endpoint, body('after'), 1_000, 'test')).kind).toBe('ok');
    transport.close();
  });
});
