/**
 * Signed calls at the participant (PROTOCOL.md 5.4, 5.5): a real NestJS participant app (the
 * SDK's DtxParticipantModule, `register: false` with a `signingSecret`, a real Postgres) over
 * real sockets, on HTTP (with and without the app's `rawBody`), TCP, Redis, RabbitMQ and NATS. A correctly
 * signed call runs once; every forged, tampered, stale or malformed one is refused with its
 * stable code (401 for signatures) before anything runs: no barrier row, no business call.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, type AddressInfo, type Server } from 'node:net';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { firstValueFrom, timeout } from 'rxjs';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callId,
  formatSigningSecret,
  natsBranchSubject,
  natsConnectionOptions,
  rabbitmqParticipantQueue,
  redisBranchPattern,
  redisTransportOptions,
  signCall,
  BRANCH_MESSAGE_PATTERN,
} from '@nest-dtx/protocol';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';
import { creditCall, freePort, LEDGER_DDL, nowSeconds, sign, startParticipant, type StartedParticipant } from '../support/signed-participant.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const key = randomBytes(32);
const otherKey = randomBytes(32);
const signingSecret = formatSigningSecret(key);
const run = randomBytes(3).toString('hex');

let db: TestDatabase;
let dataSource: DataSource;

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('signatures', [LEDGER_DDL]));
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

/** What the business and the barrier hold for gids starting with `prefix`. */
async function effects(prefix: string): Promise<{ ledger: string[]; barrier: string[] }> {
  const ledger: { gid: string; phase: string }[] = await dataSource.query(`SELECT gid, phase FROM ledger WHERE starts_with(gid, $1) ORDER BY id`, [prefix]);
  const barrier: { gid: string; phase: string }[] = await dataSource.query(`SELECT gid, phase FROM dtx_barrier WHERE starts_with(gid, $1) ORDER BY gid, phase`, [prefix]);
  return { ledger: ledger.map((r) => `${r.gid}/${r.phase}`), barrier: barrier.map((r) => `${r.gid}/${r.phase}`) };
}

interface HttpAnswer {
  status: number;
  body: unknown;
}

/** POSTs raw bytes with exactly the headers given (node:http adds only host and content-length). */
function post(url: string, path: string, body: string | Buffer, headers: Record<string, string>): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // kept as text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** Every refusal has the same shape: its HTTP status, a stable code, a message. */
function expectRefused(answer: HttpAnswer, status: number, error: string): void {
  expect({ status: answer.status, body: answer.body }).toEqual({ status, body: { statusCode: status, error, message: expect.any(String) } });
}

describe.each([
  { rawBody: true, label: 'rawBody: true (the bytes that arrived)' },
  { rawBody: false, label: 'no rawBody (JSON.stringify of the parsed body)' },
])('HTTP participant, $label', ({ rawBody }) => {
  let participant: StartedParticipant;
  const prefix = `http-${rawBody ? 'raw' : 'parsed'}-${run}-`;
  const gid = (name: string) => `${prefix}${name}`;
  const send = (body: string | Buffer, headers: Record<string, string>, path = '/tx/credit/execute') => post(participant.url, path, body, headers);
  /** A call signed as the coordinator signs it, sent as it sends it. */
  const sendSigned = (call: object, signWith = key, options: { at?: number; id?: string } = {}, path?: string) =>
    send(JSON.stringify(call), { ...JSON_TYPE, ...sign(signWith, call, options) }, path);

  beforeAll(async () => {
    participant = await startParticipant(db.url, { name: `sig-http-${run}`, coordinatorUrl: 'http://127.0.0.1:1', register: false, signingSecret }, { rawBody });
  });

  afterAll(async () => {
    await participant?.app.close();
  });

  it('runs a correctly signed call once; the same signed call again is a duplicate the barrier skips', async () => {
    const call = creditCall(gid('legit'));
    const first = await sendSigned(call);
    expect(first).toEqual({ status: 200, body: { credited: 5 } });
    expect(await sendSigned(call)).toEqual({ status: 200, body: { credited: 5 } });
    expect(participant.ledger.calls).toEqual([`${gid('legit')}/execute`]);
  });

  it('refuses a call without the signature headers: 401 SIGNATURE_MISSING', async () => {
    expectRefused(await send(JSON.stringify(creditCall(gid('unsigned'))), JSON_TYPE), 401, 'SIGNATURE_MISSING');
  });

  it('refuses a made-up signature, and one made with another secret: 401 SIGNATURE_INVALID', async () => {
    const call = creditCall(gid('forged'));
    const headers = { ...sign(key, call), 'webhook-signature': `v1,${randomBytes(32).toString('base64')}` };
    expectRefused(await send(JSON.stringify(call), { ...JSON_TYPE, ...headers }), 401, 'SIGNATURE_INVALID');
    expectRefused(await sendSigned(creditCall(gid('other-secret')), otherKey), 401, 'SIGNATURE_INVALID');
  });

  it('refuses a body changed after signing: 401 SIGNATURE_INVALID', async () => {
    const call = creditCall(gid('tampered'), 5);
    const tampered = JSON.stringify(call).replace('"amount":5', '"amount":500');
    expectRefused(await send(tampered, { ...JSON_TYPE, ...sign(key, call) }), 401, 'SIGNATURE_INVALID');
  });

  it('refuses timestamps more than 5 minutes old or ahead, and unreadable ones', async () => {
    expectRefused(await sendSigned(creditCall(gid('stale')), key, { at: nowSeconds() - 301 }), 401, 'SIGNATURE_EXPIRED');
    // 302, not 301: the participant reads its clock a moment after the call was signed, and if a
    // second ticks in between, 301 s ahead of the signer is only 300 s ahead of the participant.
    expectRefused(await sendSigned(creditCall(gid('future')), key, { at: nowSeconds() + 302 }), 401, 'SIGNATURE_EXPIRED');
    const call = creditCall(gid('bad-timestamp'));
    expectRefused(await send(JSON.stringify(call), { ...JSON_TYPE, ...sign(key, call), 'webhook-timestamp': 'soon' }), 401, 'SIGNATURE_MALFORMED');
  });

  it('refuses a signed call whose webhook-id names another branch, or whose path names another action: 400 INVALID_PHASE_CALL', async () => {
    const call = creditCall(gid('other-id'));
    expectRefused(await sendSigned(call, key, { id: `${gid('other-id')}/b2/execute` }), 400, 'INVALID_PHASE_CALL');
    expectRefused(await sendSigned(creditCall(gid('other-path')), key, {}, '/tx/debit/execute'), 400, 'INVALID_PHASE_CALL');
    expectRefused(await sendSigned({ ...creditCall(gid('unknown-action')), action: 'debit' }, key, {}, '/tx/debit/execute'), 400, 'INVALID_PHASE_CALL');
  });

  it('answers malformed JSON 400 INVALID_JSON before the route runs, and 401 SIGNATURE_MISSING when it is unsigned too', async () => {
    const headers = sign(key, creditCall(gid('malformed')));
    expectRefused(await send('{"gid": "x", ', { ...JSON_TYPE, ...headers }), 400, 'INVALID_JSON');
    expectRefused(await send('{"gid": "x", ', JSON_TYPE), 401, 'SIGNATURE_MISSING');
    expectRefused(await send('{"gid": "x", ', { ...JSON_TYPE, ...sign(key, creditCall(gid('malformed')), { at: nowSeconds() - 400 }) }), 401, 'SIGNATURE_EXPIRED');
  });

  it('answers a call in another content type 401 whatever it is when unsigned (PROTOCOL.md 5.5), and never runs a signed one', async () => {
    const call = creditCall(gid('text-plain'));
    // The JSON parser does not read a text/plain body: there are no bytes the signature could cover.
    expectRefused(await send(JSON.stringify(call), { 'content-type': 'text/plain', ...sign(key, call) }), 401, 'SIGNATURE_INVALID');
    expectRefused(await send(JSON.stringify(call), { 'content-type': 'text/plain' }), 401, 'SIGNATURE_MISSING');
    expectRefused(await send('gid=x&amount=500', { 'content-type': 'application/x-www-form-urlencoded' }), 401, 'SIGNATURE_MISSING');
    // UTF-16 parses, so the route sees it: with rawBody the signature must cover the UTF-16 bytes,
    // without it the text they decode to. Verified UTF-16 bytes are still no call: read as UTF-8
    // (what the SDK parses the verified bytes as) they are no JSON; the decoded text is not UTF-8 by declaration (415).
    const utf16 = Buffer.from(JSON.stringify(call), 'utf16le');
    const utf16Type = { 'content-type': 'application/json; charset=utf-16le' };
    const overBytes = signCall([key], callId(call), nowSeconds(), utf16);
    expectRefused(await send(utf16, { ...utf16Type, ...overBytes }), rawBody ? 400 : 401, rawBody ? 'INVALID_JSON' : 'SIGNATURE_INVALID');
    expectRefused(await send(utf16, { ...utf16Type, ...sign(key, call) }), rawBody ? 401 : 415, rawBody ? 'SIGNATURE_INVALID' : 'UNSUPPORTED_MEDIA_TYPE');
    // The parser refuses a charset that is no UTF before the route: 415 when the headers pass, 401 when there are none.
    expectRefused(await send(JSON.stringify(call), { 'content-type': 'application/json; charset=latin1', ...sign(key, call) }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectRefused(await send(JSON.stringify(call), { 'content-type': 'application/json; charset=latin1' }), 401, 'SIGNATURE_MISSING');
  });

  it('answers a body over the parser limit 413 PAYLOAD_TOO_LARGE, and a path that is no percent-encoding 400 BAD_REQUEST', async () => {
    const call = { ...creditCall(gid('huge')), payload: { amount: 5, padding: 'x'.repeat(200 * 1024) } };
    expectRefused(await sendSigned(call), 413, 'PAYLOAD_TOO_LARGE');
    expectRefused(await send(JSON.stringify(call), JSON_TYPE), 401, 'SIGNATURE_MISSING');
    expectRefused(await send('{}', { ...JSON_TYPE, ...sign(key, creditCall(gid('bad-path'))) }, '/tx/cr%E0%A4%A/execute'), 400, 'BAD_REQUEST');
    expectRefused(await send('{}', JSON_TYPE, '/tx/cr%E0%A4%A/execute'), 401, 'SIGNATURE_MISSING');
  });

  it('refuses a signed call whose payload is no JSON object (or missing) 400 INVALID_PHASE_CALL, before the barrier and the business', async () => {
    for (const [i, payload] of ['5', 5, null, [5], undefined].entries()) {
      for (const phase of ['execute', 'compensate'] as const) {
        const call = { ...creditCall(gid(`payload-${i}-${phase}`)), phase, payload };
        expectRefused(await sendSigned(call, key, {}, `/tx/credit/${phase}`), 400, 'INVALID_PHASE_CALL');
      }
    }
  });

  it(
    rawBody
      ? 'refuses a body nested deeper than JSON.stringify can write back: 401 (the bytes are verified as they are)'
      : 'refuses a body nested deeper than JSON.stringify can write back: 401 unsigned, 400 BAD_REQUEST with signature headers, never 500 (there is nothing to verify)',
    async () => {
      const deep = '['.repeat(40_000) + ']'.repeat(40_000);
      expectRefused(await send(deep, JSON_TYPE), 401, 'SIGNATURE_MISSING');
      const headers = sign(key, creditCall(gid('deep-signed')));
      expectRefused(await send(deep, { ...JSON_TYPE, ...headers }), rawBody ? 401 : 400, rawBody ? 'SIGNATURE_INVALID' : 'BAD_REQUEST');
    },
  );

  it('answers an unexpected error of the business 500 INTERNAL (transient), and keeps none of its effects', async () => {
    const call = { ...creditCall(gid('explodes')), payload: { amount: 5, explode: true } };
    expectRefused(await sendSigned(call), 500, 'INTERNAL');
  });

  it(
    rawBody
      ? 'verifies the bytes that arrived: the signed JSON re-spaced is refused'
      : 'verifies JSON.stringify of the parsed body: the signed JSON re-spaced is the same call and runs',
    async () => {
      const call = creditCall(gid('respaced'));
      const answer = await send(JSON.stringify(call, null, 2), { ...JSON_TYPE, ...sign(key, call) });
      if (rawBody) expectRefused(answer, 401, 'SIGNATURE_INVALID');
      else expect(answer).toEqual({ status: 200, body: { credited: 5 } });
    },
  );

  it('after all of them, the business and the barrier hold only the legitimate calls, and the refusals took one log line', async () => {
    const legit = rawBody ? [gid('legit')] : [gid('legit'), gid('respaced')];
    expect(await effects(prefix)).toEqual({ ledger: legit.map((g) => `${g}/execute`), barrier: legit.map((g) => `${g}/phase1`) });
    // The business ran for the legitimate calls, and began for the one that exploded (rolled back).
    expect(participant.ledger.calls).toEqual([`${gid('legit')}/execute`, `${gid('explodes')}/execute`, ...legit.slice(1).map((g) => `${g}/execute`)]);
    const refusalLines = participant.logger.lines.filter((line) => line.message.includes('refused'));
    expect(refusalLines).toHaveLength(1);
    expect(refusalLines[0]).toMatchObject({ level: 'warn' });
    expect(participant.logger.lines.filter((line) => line.level === 'error').map((line) => line.message)).toEqual(['the ledger exploded']);
  });
});

/**
 * One request packet written by hand (`data` is its data's JSON text), as Nest's TCP client
 * frames it or its Redis client publishes it; resolves with the reply packet's `err` or `response`.
 */
async function sendRaw(transport: 'tcp' | 'redis', participant: StartedParticipant, pattern: string | Record<string, string>, data: string): Promise<{ err?: unknown; response?: unknown }> {
  const id = randomBytes(8).toString('hex');
  const packet = `{"pattern":${JSON.stringify(pattern)},"data":${data},"id":"${id}"}`;
  const pick = (reply: { err?: unknown; response?: unknown }) => (reply.err !== undefined ? { err: reply.err } : { response: reply.response });
  if (transport === 'tcp') {
    const port = (participant.app.getMicroservices()[0].unwrap<Server>().address() as AddressInfo).port;
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let buffer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        const hash = buffer.indexOf('#');
        if (hash >= 0 && buffer.length - hash - 1 >= Number(buffer.slice(0, hash))) {
          socket.destroy();
          resolve(pick(JSON.parse(buffer.slice(hash + 1)) as { err?: unknown; response?: unknown }));
        }
      });
      socket.on('error', reject);
      socket.write(`${packet.length}#${packet}`);
    });
  }
  const { cmd, participant: name } = pattern as Record<string, string>;
  const channel = `{"cmd":"${cmd}","participant":"${name}"}`;
  const pub = new Redis(REDIS_URL);
  const sub = new Redis(REDIS_URL);
  try {
    const reply = new Promise<{ err?: unknown; response?: unknown }>((resolve) =>
      sub.on('message', (_channel: string, message: string) => {
        const parsed = JSON.parse(message) as { id?: string; err?: unknown; response?: unknown };
        if (parsed.id === id) resolve(pick(parsed));
      }),
    );
    await sub.subscribe(`${channel}.reply`);
    await pub.publish(channel, packet);
    return await reply;
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
}

describe.each([{ transport: 'tcp' as const }, { transport: 'redis' as const }])('$transport participant', ({ transport }) => {
  let participant: StartedParticipant;
  let client: ClientProxy;
  let pattern: string | Record<string, string>;
  const prefix = `${transport}-${run}-`;
  const gid = (name: string) => `${prefix}${name}`;
  const send = (data: unknown) => firstValueFrom(client.send<unknown>(pattern, data).pipe(timeout(5_000)));
  /** The 5.1 body plus a `headers` member holding the three signature values (5.2, 5.5). */
  const signed = (call: object, signWith = key, options: { at?: number; id?: string } = {}) => ({ ...call, headers: sign(signWith, call, options) });
  const refused = (statusCode: number, error: string) => ({ statusCode, error, message: expect.any(String) });

  beforeAll(async () => {
    const name = `sig-${transport}-${run}`;
    const options =
      transport === 'tcp'
        ? { name, coordinatorUrl: 'http://127.0.0.1:1', register: false, signingSecret, transport: { kind: 'tcp' as const, host: '127.0.0.1', port: await freePort() } }
        : { name, coordinatorUrl: 'http://127.0.0.1:1', register: false, signingSecret, transport: { kind: 'redis' as const, url: REDIS_URL } };
    participant = await startParticipant(db.url, options);
    if (options.transport.kind === 'tcp') {
      client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port: options.transport.port } });
      pattern = BRANCH_MESSAGE_PATTERN;
    } else {
      client = ClientProxyFactory.create({ transport: Transport.REDIS, options: redisTransportOptions(REDIS_URL) });
      pattern = redisBranchPattern(name);
    }
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await participant?.app.close();
  });

  it('runs a correctly signed call once', async () => {
    expect(await send(signed(creditCall(gid('legit'))))).toEqual({ outcome: 'ok', result: { credited: 5 } });
    expect(participant.ledger.calls).toEqual([`${gid('legit')}/execute`]);
  });

  it('refuses an unsigned call, and data that is no object: 401 SIGNATURE_MISSING', async () => {
    await expect(send(creditCall(gid('unsigned')))).rejects.toEqual(refused(401, 'SIGNATURE_MISSING'));
    await expect(send('gid')).rejects.toEqual(refused(401, 'SIGNATURE_MISSING'));
  });

  it('refuses forged signatures and calls signed with another secret: 401 SIGNATURE_INVALID', async () => {
    const call = creditCall(gid('forged'));
    const forged = { ...call, headers: { ...sign(key, call), 'webhook-signature': `v1,${randomBytes(32).toString('base64')}` } };
    await expect(send(forged)).rejects.toEqual(refused(401, 'SIGNATURE_INVALID'));
    await expect(send(signed(creditCall(gid('other-secret')), otherKey))).rejects.toEqual(refused(401, 'SIGNATURE_INVALID'));
  });

  it('refuses a call changed after signing: 401 SIGNATURE_INVALID', async () => {
    const call = signed(creditCall(gid('tampered'), 5));
    await expect(send({ ...call, payload: { amount: 500 } })).rejects.toEqual(refused(401, 'SIGNATURE_INVALID'));
  });

  it('refuses stale and future timestamps: 401 SIGNATURE_EXPIRED', async () => {
    await expect(send(signed(creditCall(gid('stale')), key, { at: nowSeconds() - 301 }))).rejects.toEqual(refused(401, 'SIGNATURE_EXPIRED'));
    // 302: a second may tick between signing and the participant's check (see the HTTP case).
    await expect(send(signed(creditCall(gid('future')), key, { at: nowSeconds() + 302 }))).rejects.toEqual(refused(401, 'SIGNATURE_EXPIRED'));
  });

  it('refuses a signed call whose id names another branch: 400 INVALID_PHASE_CALL', async () => {
    await expect(send(signed(creditCall(gid('other-id')), key, { id: `${gid('other-id')}/b2/execute` }))).rejects.toEqual(refused(400, 'INVALID_PHASE_CALL'));
  });

  it('refuses a signed call whose payload is no JSON object (or missing): 400 INVALID_PHASE_CALL, before the barrier and the business', async () => {
    for (const [i, payload] of ['5', 5, null, [5]].entries()) {
      for (const phase of ['execute', 'compensate'] as const) {
        await expect(send(signed({ ...creditCall(gid(`payload-${i}-${phase}`)), phase, payload }))).rejects.toEqual(refused(400, 'INVALID_PHASE_CALL'));
      }
    }
    const { payload: _, ...withoutPayload } = creditCall(gid('no-payload'));
    await expect(send(signed(withoutPayload))).rejects.toEqual(refused(400, 'INVALID_PHASE_CALL'));
  });

  it('refuses data nested deeper than JSON.stringify can write back: 401 unsigned, 400 BAD_REQUEST with signature headers, never an internal error', async () => {
    // Written by hand: a ClientProxy would not serialise it either.
    const body = creditCall(gid('deep'));
    const call = JSON.stringify(body);
    const nested = `${'['.repeat(40_000)}${']'.repeat(40_000)}`;
    for (const data of [nested, `${call.slice(0, -1)},"deep":${nested}}`]) {
      expect(await sendRaw(transport, participant, pattern, data)).toEqual({ err: refused(401, 'SIGNATURE_MISSING') });
    }
    const withHeaders = `${call.slice(0, -1)},"headers":${JSON.stringify(sign(key, body))},"deep":${nested}}`;
    expect(await sendRaw(transport, participant, pattern, withHeaders)).toEqual({ err: refused(400, 'BAD_REQUEST') });
  });

  it('after all of them, the business and the barrier hold only the legitimate call', async () => {
    expect(await effects(prefix)).toEqual({ ledger: [`${gid('legit')}/execute`], barrier: [`${gid('legit')}/phase1`] });
    expect(participant.ledger.calls).toEqual([`${gid('legit')}/execute`]);
  });
});

/**
 * The broker transports: the SDK's ServerRMQ on the participant's own queue, its ServerNats on
 * `tx.branch.<name>`, each reached as the coordinator reaches it (ClientRMQ to that queue,
 * ClientNats on that subject). The handler is the one of TCP and Redis; what is checked here is
 * that a signed call runs and the refusals travel back as errors over each broker.
 */
describe.each([{ transport: 'rabbitmq' as const }, { transport: 'nats' as const }])('$transport participant', ({ transport }) => {
  let participant: StartedParticipant;
  let client: ClientProxy;
  let pattern: string;
  const prefix = `${transport}-${run}-`;
  const gid = (name: string) => `${prefix}${name}`;
  const send = (data: unknown) => firstValueFrom(client.send<unknown>(pattern, data).pipe(timeout(5_000)));
  const signed = (call: object, signWith = key) => ({ ...call, headers: sign(signWith, call) });
  const refused = (statusCode: number, error: string) => ({ statusCode, error, message: expect.any(String) });

  beforeAll(async () => {
    const name = `sig-${transport}-${run}`;
    const url = transport === 'rabbitmq' ? RABBITMQ_URL : NATS_URL;
    participant = await startParticipant(db.url, { name, coordinatorUrl: 'http://127.0.0.1:1', register: false, signingSecret, transport: { kind: transport, url } });
    if (transport === 'rabbitmq') {
      client = ClientProxyFactory.create({ transport: Transport.RMQ, options: { urls: [RABBITMQ_URL], queue: rabbitmqParticipantQueue(name), noAssert: true } });
      pattern = BRANCH_MESSAGE_PATTERN;
    } else {
      client = ClientProxyFactory.create({ transport: Transport.NATS, options: natsConnectionOptions(NATS_URL) });
      pattern = natsBranchSubject(name);
    }
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await participant?.app.close();
  });

  it('runs a correctly signed call once', async () => {
    expect(await send(signed(creditCall(gid('legit'))))).toEqual({ outcome: 'ok', result: { credited: 5 } });
    expect(participant.ledger.calls).toEqual([`${gid('legit')}/execute`]);
  });

  it('refuses unsigned, forged and tampered calls with their codes, and runs none of them', async () => {
    await expect(send(creditCall(gid('unsigned')))).rejects.toEqual(refused(401, 'SIGNATURE_MISSING'));
    await expect(send(signed(creditCall(gid('other-secret')), otherKey))).rejects.toEqual(refused(401, 'SIGNATURE_INVALID'));
    await expect(send({ ...signed(creditCall(gid('tampered'), 5)), payload: { amount: 500 } })).rejects.toEqual(refused(401, 'SIGNATURE_INVALID'));
    expect(await effects(prefix)).toEqual({ ledger: [`${gid('legit')}/execute`], barrier: [`${gid('legit')}/phase1`] });
  });
});

describe('HTTP participant with verifySignatures: false (allowed on loopback only)', () => {
  it('runs an unsigned call', async () => {
    const participant = await startParticipant(db.url, { name: `sig-off-${run}`, coordinatorUrl: 'http://127.0.0.1:1', register: false, verifySignatures: false });
    try {
      const gid = `off-${run}-unsigned`;
      expect(await post(participant.url, '/tx/credit/execute', JSON.stringify(creditCall(gid)), JSON_TYPE)).toEqual({ status: 200, body: { credited: 5 } });
      expect(participant.ledger.calls).toEqual([`${gid}/execute`]);
    } finally {
      await participant.app.close();
    }
  });
});
