/**
 * The coordinator's HTTP participant transport over a real socket: every call is signed
 * (PROTOCOL.md 5.5) and carries the participant's registered headers, and a call never goes out
 * after its own deadline, even when the process stalled (a pause, a long GC) between creating
 * the call and writing it, so a paused instance cannot send a call after its lease ran out.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCall } from '@nest-dtx/protocol';
import { HttpParticipantTransport, type HttpCallOptions } from '../../apps/coordinator/src/invoker/http-participant.transport.js';
import { EgressPolicy } from '../../apps/coordinator/src/participants/egress-policy.js';
import { closeServer } from '../support/servers.js';

/** The server lives on 127.0.0.1: the policy of a coordinator that allows loopback participants. */
const LOOPBACK = EgressPolicy.parse('loopback');

let server: Server;
let endpoint: string;
const received: string[] = [];
const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
const key = randomBytes(32);
const previous = randomBytes(32);
const options = (extra: Partial<HttpCallOptions> = {}): HttpCallOptions => ({ sender: 'test', keys: [key], headers: {}, ...extra });

beforeAll(async () => {
  server = createServer((req, res) => {
    received.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tx`;
});

afterAll(async () => {
  await closeServer(server);
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
    const transport = new HttpParticipantTransport(LOOPBACK);
    expect(await transport.call(endpoint, body('t-1'), 1_000, options())).toEqual({ kind: 'ok', result: { ok: true } });
    transport.close();
  });

  it('signs every call over the bytes it sends, with both keys during a rotation, and adds the registered headers', async () => {
    const transport = new HttpParticipantTransport(LOOPBACK);
    await transport.call(endpoint, body('signed-1'), 1_000, options({ keys: [key, previous], headers: { 'x-gateway-key': 'gw-1' } }));
    const call = seen.at(-1)!;
    const now = Date.now() / 1000;
    expect(call.headers['webhook-id']).toBe('signed-1/b1/confirm');
    expect(Math.abs(Number(call.headers['webhook-timestamp']) - now)).toBeLessThan(5);
    expect(String(call.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifyCall([key], call.headers, call.body, now)).toEqual({ ok: true });
    expect(verifyCall([previous], call.headers, call.body, now)).toEqual({ ok: true });
    expect(verifyCall([randomBytes(32)], call.headers, call.body, now)).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
    expect(call.headers['x-gateway-key']).toBe('gw-1');
    transport.close();
  });

  it('does not send a call whose deadline passed while the process was stalled before writing it', async () => {
    const transport = new HttpParticipantTransport(LOOPBACK);
    // A first call leaves a kept-alive socket, so the next one gets it without connecting.
    await transport.call(endpoint, body('warm'), 1_000, options());
    const before = received.length;
    const late = transport.call(endpoint, body('stalled'), 100, options());
    stall(250);
    const outcome = await late;
    expect(outcome.kind).toBe('transient');
    await new Promise((r) => setTimeout(r, 100));
    expect(received.slice(before)).toEqual([]);
    // The transport still works afterwards.
    expect((await transport.call(endpoint, body('after'), 1_000, options())).kind).toBe('ok');
    transport.close();
  });

  it('checks what a name resolves to before connecting, and an address literal before the call', async () => {
    const transport = new HttpParticipantTransport(EgressPolicy.parse('public'));
    const before = received.length;
    const byName = await transport.call(endpoint.replace('127.0.0.1', 'localhost'), body('egress-name'), 1_000, options());
    expect(byName).toMatchObject({ kind: 'transient', error: expect.stringMatching(/^address (127\.0\.0\.1|::1) refused by the egress policy: loopback is not in PARTICIPANT_NETWORKS \(public\) \(localhost resolves to it\)$/) });
    const byAddress = await transport.call(endpoint, body('egress-literal'), 1_000, options());
    expect(byAddress).toEqual({ kind: 'transient', error: 'address 127.0.0.1 refused by the egress policy: loopback is not in PARTICIPANT_NETWORKS (public)' });
    expect(received.slice(before)).toEqual([]);
    transport.close();
  });

  it('stops reading an answer past the cap, announced or streamed, and the next call still works', async () => {
    const big = createServer((req, res) => {
      req.resume();
      const payload = Buffer.alloc(4096, 'x');
      if (req.url?.includes('announced')) res.writeHead(200, { 'content-length': payload.length }).end(payload);
      else res.writeHead(200).write(payload, () => res.end()); // written before end: chunked, no content-length
    });
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
    const bigEndpoint = `http://127.0.0.1:${(big.address() as AddressInfo).port}/tx`;
    const transport = new HttpParticipantTransport(LOOPBACK, 1024);
    for (const action of ['announced', 'streamed']) {
      expect(await transport.call(bigEndpoint, { ...body(`big-${action}`), action }, 1_000, options())).toEqual({ kind: 'transient', error: 'answer larger than 1024 bytes' });
    }
    expect((await transport.call(endpoint, body('after-big'), 1_000, options())).kind).toBe('ok');
    transport.close();
    await new Promise<void>((resolve) => big.close(() => resolve()));
  });

  it('maps 202 to ongoing, with the body’s retryAfterMs as the hint when it is a positive whole number (at most an hour); any other 2xx stays ok', async () => {
    // Each action names the answer the participant gives: a status and a body, written as they come.
    const answers: Record<string, { status: number; body: string; type?: string }> = {
      hinted: { status: 202, body: '{"retryAfterMs":2000}' },
      'no-body': { status: 202, body: '' },
      'empty-object': { status: 202, body: '{}' },
      'not-json': { status: 202, body: 'accepted, come back later', type: 'text/plain' },
      zero: { status: 202, body: '{"retryAfterMs":0}' },
      negative: { status: 202, body: '{"retryAfterMs":-5}' },
      fractional: { status: 202, body: '{"retryAfterMs":1.5}' },
      text: { status: 202, body: '{"retryAfterMs":"2000"}' },
      array: { status: 202, body: '[2000]' },
      'a-week': { status: 202, body: '{"retryAfterMs":604800000}' },
      'beyond-safe': { status: 202, body: '{"retryAfterMs":9007199254740993}' },
      created: { status: 201, body: '{"retryAfterMs":2000}' },
      'no-content': { status: 204, body: '' },
    };
    const participant = createServer((req, res) => {
      req.resume();
      const action = decodeURIComponent((req.url ?? '').split('/')[2] ?? '');
      const answer = answers[action];
      res.writeHead(answer.status, answer.body === '' ? {} : { 'content-type': answer.type ?? 'application/json' }).end(answer.body);
    });
    await new Promise<void>((resolve) => participant.listen(0, '127.0.0.1', resolve));
    const participantEndpoint = `http://127.0.0.1:${(participant.address() as AddressInfo).port}/tx`;
    const transport = new HttpParticipantTransport(LOOPBACK);
    const outcomes: Record<string, unknown> = {};
    for (const action of Object.keys(answers)) {
      outcomes[action] = await transport.call(participantEndpoint, { ...body(`ongoing-${action}`), action }, 1_000, options());
    }
    expect(outcomes).toEqual({
      hinted: { kind: 'ongoing', retryAfterMs: 2000 },
      'no-body': { kind: 'ongoing' },
      'empty-object': { kind: 'ongoing' },
      'not-json': { kind: 'ongoing' },
      zero: { kind: 'ongoing' },
      negative: { kind: 'ongoing' },
      fractional: { kind: 'ongoing' },
      text: { kind: 'ongoing' },
      array: { kind: 'ongoing' },
      'a-week': { kind: 'ongoing', retryAfterMs: 60 * 60 * 1000 },
      'beyond-safe': { kind: 'ongoing' },
      created: { kind: 'ok', result: { retryAfterMs: 2000 } },
      'no-content': { kind: 'ok', result: null },
    });
    transport.close();
    await closeServer(participant);
  });
});
