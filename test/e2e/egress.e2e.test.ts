/**
 * The egress policy against real coordinators, real participant servers and real sockets: a
 * participant key cannot make the coordinator call a metadata service, its own loopback or
 * another port of an allowed host, whatever the spelling of the address; a name is checked when
 * it is resolved, before the connection; a redirect is never followed; an over-large answer is
 * cut. Every server here listens on 127.0.0.1.
 */
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ParticipantView, type TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { coordinator, generateApiKeys, getJson, until, type CoordinatorHandle, type StackApiKeys } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

/** Short retries: each refused call shows up in the branch's lastError within a second. */
const FAST_RETRIES = { CALL_TIMEOUT_MS: '1000', LEASE_MS: '3000', RECOVERY_INTERVAL_MS: '200', RETRY_BASE_MS: '100', RETRY_MAX_MS: '500' };
const ACTIONS = [{ name: 'reserve', modes: ['tcc'] }];
const ONE_MEBIBYTE = 1024 * 1024;
/** What the over-large participant tries to send: far more than the coordinator reads, and more than loopback socket buffers hold. */
const HUGE_ANSWER_BYTES = 64 * ONE_MEBIBYTE;

/** A bare HTTP server on 127.0.0.1 that counts the requests it receives. */
interface Recorder {
  server: HttpServer;
  port: number;
  requests: string[];
}

async function httpServer(answer: (res: ServerResponse) => void): Promise<Recorder> {
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => answer(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, requests };
}

let databases: TestDatabase[] = [];
let keys: StackApiKeys;
/** API keys and no PARTICIPANT_NETWORKS: the default, public addresses only. */
let publicOnly: CoordinatorHandle;
/** API keys, PARTICIPANT_NETWORKS=loopback and PARTICIPANT_HOSTS with ports. */
let loopback: CoordinatorHandle;

let target: Recorder;
let redirector: Recorder;
let huge: Recorder;
/** Bytes the over-large participant managed to write per call before the coordinator hung up. */
const hugeWritten: number[] = [];
let tcpTarget: TcpServer;
let tcpConnections = 0;

beforeAll(async () => {
  target = await httpServer((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"secret":"from the inside"}'));
  redirector = await httpServer((res) => res.writeHead(302, { location: `http://127.0.0.1:${target.port}/tx/reserve/try` }).end());
  huge = await httpServer((res) => {
    // Chunked, no content-length: the coordinator only learns the size by reading.
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    const more = (): void => {
      while (written < HUGE_ANSWER_BYTES && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    res.on('close', () => hugeWritten.push(written));
    more();
  });
  tcpTarget = createTcpServer((socket) => {
    tcpConnections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => tcpTarget.listen(0, '127.0.0.1', resolve));

  keys = generateApiKeys();
  databases = await Promise.all(['egress_public', 'egress_loopback'].map((prefix) => createTestDatabase(prefix)));
  // Empty overrides the test stack's loopback default: the coordinator sees the setting unset.
  publicOnly = await coordinator('egress-public-coordinator', databases[0].url, { API_KEYS: keys.API_KEYS, PARTICIPANT_NETWORKS: '', ...FAST_RETRIES });
  loopback = await coordinator('egress-loopback-coordinator', databases[1].url, {
    API_KEYS: keys.API_KEYS,
    PARTICIPANT_NETWORKS: 'loopback',
    PARTICIPANT_HOSTS: `127.0.0.1:${redirector.port},127.0.0.1:${huge.port},[::1]:${redirector.port}`,
    ...FAST_RETRIES,
  });
  await Promise.all([publicOnly.start(), loopback.start()]);
});

afterAll(async () => {
  await Promise.all([publicOnly?.process.kill(), loopback?.process.kill()]);
  for (const server of [target?.server, redirector?.server, huge?.server, tcpTarget]) {
    server?.close();
  }
  await Promise.all(databases.map((d) => d.drop()));
});

async function register(coord: CoordinatorHandle, body: Record<string, unknown>): Promise<{ status: number; json: { error?: string; field?: string; message?: string } }> {
  const response = await fetch(`${coord.url}/v1/participants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.participant}` },
    body: JSON.stringify({ actions: ACTIONS, ...body }),
  });
  return { status: response.status, json: (await response.json()) as { error?: string; field?: string; message?: string } };
}

/** Begins a TCC transaction on `participant` and waits until its one branch records an error. */
async function firstError(coord: CoordinatorHandle, gid: string, participant: string): Promise<string> {
  const client = new TransactionClient({ coordinatorUrl: coord.url, apiKey: keys.client });
  await client.begin({ mode: 'tcc', gid, wait: false, branches: [{ branchId: 'b1', participant, action: 'reserve', payload: {} }] });
  return until(`an error on ${gid}'s branch`, async () => {
    const view: TransactionView = await client.get(gid);
    const error = view.branches[0]?.lastError;
    return typeof error === 'string' ? error : undefined;
  }, 20_000, 100);
}

describe('a coordinator with API keys and PARTICIPANT_NETWORKS unset (public only)', () => {
  it('says its policy once at start-up', () => {
    // The log file collects every run of this test: one policy line per start, as many as signing lines.
    const log = readFileSync(publicOnly.process.logFile, 'utf8').split('\n');
    const lines = log.filter((line) => line.includes('participant egress policy'));
    expect(lines.length).toBe(log.filter((line) => line.includes('signing participant calls with secrets')).length);
    expect(lines.at(-1)).toContain('calls go to public addresses (PARTICIPANT_NETWORKS unset, API_KEYS set: public only)');
  });

  it.each([
    'http://169.254.169.254/latest/meta-data',
    'http://[::ffff:169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://0xa9fea9fe/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[2002:a9fe:a9fe::]/',
    'http://[fd00:ec2::254]/',
    'http://0.0.0.0:7070/',
    'http://[::]/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://240.0.0.1/',
    'http://[fe80::1]/',
    'http://127.0.0.1:5432/',
    'http://0x7f000001/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://10.0.0.7:4001/tx',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
  ])('refuses the endpoint %s with 403 PARTICIPANT_ADDRESS_NOT_ALLOWED', async (endpoint) => {
    const answer = await register(publicOnly, { name: 'intruder', transport: 'http', endpoint });
    expect({ status: answer.status, error: answer.json.error, field: answer.json.field }).toEqual({
      status: 403,
      error: ErrorCode.PARTICIPANT_ADDRESS_NOT_ALLOWED,
      field: 'endpoint',
    });
    expect(answer.json.message).toMatch(/^endpoint: address .* refused by the egress policy: /);
  });

  // The endpoint's URL validation (class-validator isURL) already refuses hosts whose last label
  // is a number, before the policy is asked: these never reach a call either.
  it.each(['http://2852039166/', 'http://0251.0376.0251.0376/', 'http://0/', 'http://127.1/', 'http://2130706433/'])(
    'refuses the endpoint %s as malformed (400 VALIDATION_FAILED)',
    async (endpoint) => {
      const answer = await register(publicOnly, { name: 'intruder', transport: 'http', endpoint });
      expect({ status: answer.status, error: answer.json.error, field: answer.json.field }).toEqual({ status: 400, error: ErrorCode.VALIDATION_FAILED, field: 'endpoint' });
    },
  );

  it('refuses a TCP host in any spelling the same way, naming the field, and stores nothing', async () => {
    for (const host of ['169.254.169.254', '2852039166', '0xa9fea9fe', '2130706433', '127.1', '0177.0.0.1', '::1', '::ffff:127.0.0.1', '0x7f.1', '0']) {
      const answer = await register(publicOnly, { name: 'intruder', transport: 'tcp', host, port: 5001 });
      expect({ host, status: answer.status, error: answer.json.error, field: answer.json.field }).toEqual({
        host,
        status: 403,
        error: ErrorCode.PARTICIPANT_ADDRESS_NOT_ALLOWED,
        field: 'host',
      });
    }
    const listed = await getJson<ParticipantView[]>(`${publicOnly.url}/v1/participants`, keys.admin);
    expect(listed.map((p) => p.name)).not.toContain('intruder');
  });

  it('registers a name, but refuses the loopback address it resolves to when calling, before connecting', async () => {
    const registered = await register(publicOnly, { name: 'named', transport: 'http', endpoint: `http://localhost:${target.port}/tx` });
    expect(registered.status).toBe(201);
    const error = await firstError(publicOnly, 'egress-named', 'named');
    expect(error).toMatch(/^address (127\.0\.0\.1|::1) refused by the egress policy: loopback is not in PARTICIPANT_NETWORKS \(public\) \(localhost resolves to it\)$/);
    expect(target.requests).toEqual([]);
  });

  it('does the same for a TCP participant: resolved and refused before any connection', async () => {
    const registered = await register(publicOnly, { name: 'named-tcp', transport: 'tcp', host: 'localhost', port: (tcpTarget.address() as AddressInfo).port });
    expect(registered.status).toBe(201);
    const error = await firstError(publicOnly, 'egress-named-tcp', 'named-tcp');
    expect(error).toMatch(/refused by the egress policy: loopback is not in PARTICIPANT_NETWORKS \(public\) \(localhost resolves to it\)$/);
    expect(tcpConnections).toBe(0);
  });
});

describe('a coordinator with PARTICIPANT_NETWORKS=loopback and PARTICIPANT_HOSTS with ports', () => {
  it('refuses another port of a listed host, naming the field, and accepts the listed ones', async () => {
    const otherPort = await register(loopback, { name: 'elsewhere', transport: 'http', endpoint: `http://127.0.0.1:${target.port}/tx` });
    expect({ status: otherPort.status, error: otherPort.json.error, field: otherPort.json.field }).toEqual({
      status: 403,
      error: ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED,
      field: 'endpoint',
    });
    expect(otherPort.json.message).toBe(`endpoint names host 127.0.0.1 (port ${target.port}), which PARTICIPANT_HOSTS does not allow`);
    const tcpPort = await register(loopback, { name: 'elsewhere', transport: 'tcp', host: '127.0.0.1', port: target.port });
    expect({ status: tcpPort.status, error: tcpPort.json.error, field: tcpPort.json.field }).toEqual({ status: 403, error: ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED, field: 'port' });
    expect((await register(loopback, { name: 'ipv6', transport: 'http', endpoint: `http://[::1]:${redirector.port}/tx` })).status).toBe(201);
    // Off the list: the list answers first, whatever the policy would say.
    const offTheList = await register(loopback, { name: 'metadata', transport: 'http', endpoint: 'http://169.254.169.254/' });
    expect(offTheList.json.error).toBe(ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED);
    const listed = await getJson<ParticipantView[]>(`${loopback.url}/v1/participants`, keys.admin);
    expect(listed.map((p) => p.name)).toEqual(['ipv6']);
  });

  it('treats a 302 as a transient error and never follows it', async () => {
    expect((await register(loopback, { name: 'redirecting', transport: 'http', endpoint: `http://127.0.0.1:${redirector.port}/tx` })).status).toBe(201);
    const error = await firstError(loopback, 'egress-redirect', 'redirecting');
    expect(error).toMatch(/^HTTP 302/);
    expect(redirector.requests.length).toBeGreaterThan(0);
    expect(target.requests).toEqual([]);
  });

  it('cuts an answer past 1 MB and records the call as transient', async () => {
    expect((await register(loopback, { name: 'huge', transport: 'http', endpoint: `http://127.0.0.1:${huge.port}/tx` })).status).toBe(201);
    const error = await firstError(loopback, 'egress-huge', 'huge');
    expect(error).toBe(`answer larger than ${ONE_MEBIBYTE} bytes`);
    // The coordinator hung up: the participant could not write its whole answer.
    await until('the huge answer to be cut', () => Promise.resolve(hugeWritten.length > 0 ? true : undefined));
    expect(Math.max(...hugeWritten)).toBeLessThan(HUGE_ANSWER_BYTES);
  });
});
