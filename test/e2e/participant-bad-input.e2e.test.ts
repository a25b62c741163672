/**
 * Hostile input at the participant: the SDK side of bad-input.e2e.test.ts. Three demo account
 * services (SDK participants) registered with a coordinator that has API keys, one over HTTP,
 * one over NestJS TCP and one over NestJS Redis, receive calls straight from this test, with no
 * coordinator in between: malformed, oversized, wrongly typed (unsigned and signed), forged,
 * replayed outside the window, signed for another participant, changed after signing, with a
 * webhook-id or (HTTP) a path that does not match the body. Every one must be refused with a
 * 4xx and a stable code (401 where only the signature is wrong; PROTOCOL.md 5.5, docs/participants.md "Signed
 * calls"), never a 5xx or a 2xx, and none may store anything: each service's database
 * (accounts, pending credits, the barrier, prepared transactions) is the same before and after.
 * A correctly signed call at the end does change it, so that comparison can fail.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Logger } from '@nestjs/common';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import pg from 'pg';
import { firstValueFrom, timeout } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BRANCH_MESSAGE_PATTERN,
  callId,
  ID_PATTERN,
  MODE_PHASES,
  MODES,
  NAME_PATTERN,
  parseSigningSecret,
  PHASES,
  redisBranchPattern,
  redisTransportOptions,
  SIGNATURE_HEADERS,
  type Mode,
  type ParticipantRegistrationView,
  type ParticipantView,
  type Phase,
  type PhaseCallBody,
} from '@nest-dtx/protocol';
import { ParticipantErrorCode } from '@nest-dtx/sdk';
import {
  REDIS_URL,
  accountService,
  coordinator,
  generateApiKeys,
  getJson,
  openAccount,
  postJson,
  type CoordinatorHandle,
  type ParticipantTransport,
  type ServiceHandle,
  type StackApiKeys,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { rawHttp, type RawAnswer } from '../support/raw-http.js';

const TRANSPORTS: ParticipantTransport[] = ['http', 'tcp', 'redis'];
const ACTIONS = ['debit', 'credit'] as const;
const run = randomBytes(3).toString('hex');
const CODES = new Set<string>(Object.values(ParticipantErrorCode));
const { id: ID, timestamp: TS, signature: SIG } = SIGNATURE_HEADERS;

interface Participant {
  transport: ParticipantTransport;
  name: string;
  service: ServiceHandle;
  db: TestDatabase;
  /** Its signing key, from its registration answer. */
  key: Buffer;
  /** TCP: the port of its microservice. */
  tcpPort?: number;
}

let coord: CoordinatorHandle;
let coordDb: TestDatabase;
let keys: StackApiKeys;
const participants = new Map<ParticipantTransport, Participant>();
const nameOf = (transport: ParticipantTransport) => `hostile-${transport}-${run}`;

// ---------------------------------------------------------------------------------------------
// Signing, as PROTOCOL.md 5.5 says (written out here rather than with signCall, so the test
// can sign timestamps that are no number and bytes that are no string).

const nowSeconds = () => Math.floor(Date.now() / 1000);
type Sig = Record<string, string | string[]>;

function hmac(key: Buffer, id: string, timestamp: string, body: string | Buffer): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

/** The three values the coordinator would send with `body` (its exact bytes). */
function signed(key: Buffer, id: string, body: string | Buffer, timestamp: string | number = nowSeconds()): Sig {
  const ts = String(timestamp);
  return { [ID]: id, [TS]: ts, [SIG]: `v1,${hmac(key, id, ts, body)}` };
}

/** The webhook-id the coordinator would write for any body, however wrong (`${gid}/${branchId}/${phase}`). */
function idOf(body: unknown): string {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const part = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? 'undefined');
  return `${part(b.gid)}/${part(b.branchId)}/${part(b.phase)}`;
}

// ---------------------------------------------------------------------------------------------
// The probes.

interface Expectation {
  /** The exact status; any 4xx when absent. */
  status?: number;
  /** The exact code; any stable code when absent. */
  code?: string;
}

/** A hostile variant of a call, sent alike on every transport: the body, and the three signature values (or none). */
interface Variant {
  label: string;
  body: Record<string, unknown>;
  /**
   * HTTP headers; on TCP and Redis the `headers` member of the data. Absent: none at all. A
   * function signs when the probe is sent (for timestamps just outside the window).
   */
  sig?: Sig | (() => Sig);
  expect: Expectation;
  /** Over HTTP, when it differs: a header value arrives stripped of surrounding whitespace, so what was signed is not what arrives. */
  httpExpect?: Expectation;
}

interface HttpProbe {
  label: string;
  path: string;
  body: string | Buffer;
  headers: Record<string, string | string[]> | (() => Record<string, string | string[]>);
  /** Sent without content-length (chunked). */
  chunked?: boolean;
  expect: Expectation;
}

interface MessageProbe {
  label: string;
  /** The data of the message (sent with a ClientProxy), or `raw`: the text of the whole packet's data, sent on the socket or channel by hand. */
  data?: unknown;
  /** The data, made when it is sent (signed then). */
  lateData?: () => unknown;
  raw?: string;
  expect: Expectation;
}

const SIGNATURE_ONLY = (code?: string): Expectation => ({ status: 401, ...(code ? { code } : {}) });
const MISSING = SIGNATURE_ONLY('SIGNATURE_MISSING');
const INVALID = SIGNATURE_ONLY('SIGNATURE_INVALID');
const EXPIRED = SIGNATURE_ONLY('SIGNATURE_EXPIRED');
const MALFORMED = SIGNATURE_ONLY('SIGNATURE_MALFORMED');
const WRONG_CALL: Expectation = { status: 400, code: 'INVALID_PHASE_CALL' };
const ANY_4XX: Expectation = {};

const HOSTILE_STRINGS = [
  "' OR 1=1 --",
  "mallory'; UPDATE accounts SET balance = 1000000 WHERE id = 'mallory'; --",
  '"; DROP TABLE dtx_barrier; --',
  '../../etc/passwd',
  '..%2F..%2Fetc%2Fpasswd',
  '%00',
  '<script>alert(1)</script>',
  'ünïcödé',
  '__proto__',
  'x'.repeat(129),
  'x'.repeat(10_000),
  '',
  ' ',
];
const WRONG_VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, 2 ** 53 + 1, 'text', [], [1, 2], {}, { nested: { deep: true } }, ...HOSTILE_STRINGS];

const isPlainObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown) => typeof v === 'string' && ID_PATTERN.test(v);

/** Whether `value` in `field` still makes `call` a call the account service serves (then it is no wrong value). */
function stillValid(call: PhaseCallBody, field: keyof PhaseCallBody, value: unknown): boolean {
  switch (field) {
    case 'gid':
    case 'branchId':
      return isId(value);
    case 'mode':
      return MODES.includes(value as Mode) && phasesOf(value as Mode).includes(call.phase);
    case 'action':
      return ACTIONS.includes(value as never);
    case 'phase':
      return phasesOf(call.mode).includes(value as Phase);
    case 'payload':
      return isPlainObject(value);
  }
}

const phasesOf = (mode: Mode): Phase[] => {
  if (mode === 'workflow') return ['resume'];
  const p = MODE_PHASES[mode];
  return [p.phase1, ...(p.commit ? [p.commit] : []), ...(p.rollback ? [p.rollback] : [])];
};

/** Every call the account service serves: each action in each mode and phase, with payloads that would move money. */
function validCalls(transport: ParticipantTransport): PhaseCallBody[] {
  return ACTIONS.flatMap((action) =>
    MODES.flatMap((mode) =>
      phasesOf(mode).map((phase) => ({
        gid: `hostile-${transport}-${action}-${mode}-${phase}-${run}`,
        branchId: 'b1',
        mode,
        action,
        phase,
        payload: action === 'debit' ? { accountId: 'alice', amount: 500 } : { accountId: 'mallory', amount: 1_000_000 },
      })),
    ),
  );
}

const FIELDS: (keyof PhaseCallBody)[] = ['gid', 'branchId', 'mode', 'action', 'phase', 'payload'];

/** What each field is replaced with: values of other types and hostile strings, plus names this service does not have. */
function wrongValuesFor(call: PhaseCallBody, field: keyof PhaseCallBody): unknown[] {
  const extra: Record<keyof PhaseCallBody, unknown[]> = {
    gid: [`${call.gid}/x`, 'a'.repeat(129)],
    branchId: ['b1/execute', 'b 1'],
    mode: ['xa', 'TCC', 'Saga', 'saga ', ...MODES],
    action: ['transfer', 'Credit', 'DEBIT', 'debit ', 'constructor', 'toString', 'hasOwnProperty'],
    phase: [...PHASES, 'Execute', 'try ', 'constructor', 'phase1'],
    payload: ['{"accountId":"mallory","amount":1000000}', [call.payload]],
  };
  return [...WRONG_VALUES, ...extra[field]].filter((value) => !stillValid(call, field, value));
}

/** Wrong values inside the payload (the business validates them; signed ones go to phase 1 only, below). */
const WRONG_ACCOUNT_IDS: unknown[] = [...WRONG_VALUES, 'nobody', 'MALLORY'];
const WRONG_AMOUNTS: unknown[] = [...WRONG_VALUES.filter((v) => !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1e12)), '1000000', -1_000_000, 1e12 + 1, Number.MAX_SAFE_INTEGER];

/** The HTTP path of a body: its own action and phase where they can be a path segment, else the valid call's. */
function pathOf(body: Record<string, unknown>, call: PhaseCallBody): string {
  const segment = (v: unknown, fallback: string) => (typeof v === 'string' && NAME_PATTERN.test(v) ? v : fallback);
  return `/tx/${segment(body.action, call.action)}/${segment(body.phase, call.phase)}`;
}

/** The variants of `call` that go out on every transport. `key` is the participant's, `others` other participants'. */
function variants(call: PhaseCallBody, key: Buffer, others: Buffer[]): Variant[] {
  const list: Variant[] = [];
  const add = (label: string, body: Record<string, unknown>, sig: Variant['sig'], expectation: Expectation, httpExpect?: Expectation) =>
    list.push({ label, body, sig, expect: expectation, ...(httpExpect ? { httpExpect } : {}) });
  const body = { ...call } as Record<string, unknown>;
  const text = JSON.stringify(call);
  const id = callId(call);
  const good = signed(key, id, text);
  const t = Number(good[TS]);
  const without = (name: string): Sig => Object.fromEntries(Object.entries(good).filter(([n]) => n !== name));

  // Forged: no signature, each value missing or empty, garbage, another scheme, another key.
  add('no signature headers', body, undefined, MISSING);
  for (const name of [ID, TS, SIG]) {
    add(`without ${name}`, body, without(name), MISSING);
    add(`${name} empty`, body, { ...good, [name]: '' }, MISSING);
  }
  const mac = (good[SIG] as string).slice(3);
  const flipped = `${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
  for (const garbage of [
    'garbage',
    'v1',
    'v1,',
    'v1,!!!!',
    `v1,${randomBytes(32).toString('base64')}`,
    `v1,${randomBytes(31).toString('base64')}`,
    `v1,${randomBytes(64).toString('base64')}`,
    `v1,${flipped}`,
    `v1,${Buffer.from(mac, 'base64').toString('hex')}`,
    `v1,${'A'.repeat(2_000)}`,
    Array.from({ length: 11 }, () => `v1,${randomBytes(32).toString('base64')}`).join(' '),
    `${good[SIG] as string}`.replace('v1,', 'v2,'),
    `${good[SIG] as string}`.replace('v1,', 'V1,'),
    `${good[SIG] as string}`.replace('v1,', 'v0,'),
    `${good[SIG] as string}`.replace('v1,', 'v1;'),
    `${good[SIG] as string}`.replace('v1,', 'v1 '),
    `${good[SIG] as string}`.replace('v1,', 'v1a,'),
    `${good[SIG] as string}`.replace('v1,', 'sha256='),
    mac,
  ]) {
    add(`webhook-signature ${garbage.slice(0, 24)}`, body, { ...good, [SIG]: garbage }, SIGNATURE_ONLY());
  }
  const secretText = `whsec_${key.toString('base64')}`;
  const bitFlipped = Buffer.from(key);
  bitFlipped[0] ^= 1;
  for (const [label, wrongKey] of [
    ['a random key', randomBytes(32)],
    ['the whsec_ text as the key', Buffer.from(secretText)],
    ['the base64 text as the key', Buffer.from(key.toString('base64'))],
    ['an empty key', Buffer.alloc(0)],
    ['the key with one bit flipped', bitFlipped],
    // Its first byte dropped (not its last: HMAC pads a short key with zeros, so a key ending in
    // a zero byte and the same key without it sign alike; a random key ends in one every 256 runs).
    ['the key cut short', key.subarray(1)],
  ] as const) {
    add(`signed with ${label}`, body, signed(wrongKey, id, text), INVALID);
  }

  // Replayed outside the window, and timestamps that are no Unix time in seconds.
  for (const [label, at] of [['301 s ago', t - 301], ['1 h ago', t - 3_600], ['1 day ago', t - 86_400], ['a year ahead', t + 365 * 86_400], ['at 0', 0]] as const) {
    add(`signed ${label}`, body, signed(key, id, text, at), EXPIRED);
  }
  // Signed as it is sent, 310 s ahead: past the 5 minutes even when the participant reads it seconds
  // later (a message waited 1 s in Redis on a machine at load 18, and a 301 s lead was then 300 s).
  add('signed 310 s ahead', body, () => signed(key, id, text, Math.ceil(Date.now() / 1000) + 310), EXPIRED);
  for (const ts of ['soon', '-1', '1.5', `${t}.0`, `${t * 1000}`, `+${t}`, `0x${t.toString(16)}`, '1e9', '9'.repeat(13)]) {
    add(`webhook-timestamp ${JSON.stringify(ts)}`, body, signed(key, id, text, ts), MALFORMED);
  }
  // HTTP strips the whitespace around a header value (so what arrives is not what was signed); TCP and Redis keep it.
  for (const ts of [` ${t}`, `${t} `, `${t}\t`]) add(`webhook-timestamp ${JSON.stringify(ts)}`, body, signed(key, id, text, ts), SIGNATURE_ONLY());
  add('webhook-timestamp other than the signed one', body, { ...good, [TS]: String(t + 1) }, INVALID);
  add('webhook-timestamp with a leading zero, signed without', body, { ...good, [TS]: `0${t}` }, INVALID);

  // Signed for another participant.
  for (const [i, other] of others.entries()) add(`signed with participant ${i}'s secret`, body, signed(other, id, text), INVALID);
  add('signed with both other secrets', body, { ...good, [SIG]: others.map((o) => signed(o, id, text)[SIG] as string).join(' ') }, INVALID);

  // Changed after signing (still a valid call: only the signature is wrong).
  const payload = call.payload as { accountId: string; amount: number };
  const changed: [string, Record<string, unknown>][] = [
    ['amount', { ...body, payload: { ...payload, amount: payload.amount + 1 } }],
    ['amount x100', { ...body, payload: { ...payload, amount: payload.amount * 100 } }],
    ['accountId', { ...body, payload: { ...payload, accountId: payload.accountId === 'alice' ? 'mallory' : 'alice' } }],
    ['gid', { ...body, gid: `${call.gid}-other` }],
    ['branchId', { ...body, branchId: 'b2' }],
    ['action', { ...body, action: call.action === 'debit' ? 'credit' : 'debit' }],
    ...phasesOf(call.mode)
      .filter((p) => p !== call.phase)
      .map((phase): [string, Record<string, unknown>] => [`phase ${phase}`, { ...body, phase }]),
    ['a member added', { ...body, extra: true }],
    ['a payload member added', { ...body, payload: { ...payload, note: 'hi' } }],
    ['a __proto__ member added', JSON.parse(`${text.slice(0, -1)},"__proto__":{"amount":1}}`) as Record<string, unknown>],
    ['members reordered', { payload: call.payload, phase: call.phase, action: call.action, mode: call.mode, branchId: call.branchId, gid: call.gid }],
    ['payload members reordered', { ...body, payload: { amount: payload.amount, accountId: payload.accountId } }],
  ];
  for (const [label, changedBody] of changed) add(`${label} changed after signing`, changedBody, good, INVALID);
  // These are no valid call any more, but the signature fails first.
  add('payload removed after signing', Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'payload')), good, INVALID);
  add('gid removed after signing', Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'gid')), good, INVALID);

  // A valid signature over the body, but a webhook-id that does not name it.
  const otherPhase = phasesOf(call.mode).find((p) => p !== call.phase)!;
  for (const otherId of [
    `${call.gid}-other/${call.branchId}/${call.phase}`,
    `${call.gid}/b2/${call.phase}`,
    `${call.gid}/${call.branchId}/${otherPhase}`,
    `${call.gid}/${call.branchId}`,
    call.gid,
    `${id}/extra`,
    id.toUpperCase(),
    `${call.gid}/${call.branchId}/${call.phase}/`,
    'x'.repeat(10_000),
  ]) {
    add(`webhook-id ${otherId.slice(0, 40)} over the body`, body, signed(key, otherId, text), WRONG_CALL);
  }
  // With whitespace around it: over HTTP the value arrives stripped, so the signature fails (401); on TCP and Redis the id fails (400).
  for (const otherId of [`${id} `, ` ${id}`]) add(`webhook-id ${JSON.stringify(otherId).slice(0, 40)} over the body`, body, signed(key, otherId, text), ANY_4XX);

  // Repeated headers (HTTP: separate header lines, which Node joins with ", "; TCP/Redis: arrays).
  add('webhook-id repeated', body, { ...good, [ID]: [id, id] }, SIGNATURE_ONLY());
  add('webhook-id repeated with another id', body, { ...good, [ID]: [id, `${call.gid}-other/b1/${call.phase}`] }, SIGNATURE_ONLY());
  add('webhook-timestamp repeated', body, { ...good, [TS]: [String(t), String(t)] }, SIGNATURE_ONLY());
  add('webhook-timestamp repeated with an old one', body, { ...good, [TS]: [String(t - 3_600), String(t)] }, SIGNATURE_ONLY());
  add('webhook-signature repeated, both forged', body, { ...good, [SIG]: [`v1,${randomBytes(32).toString('base64')}`, `v1,${randomBytes(32).toString('base64')}`] }, SIGNATURE_ONLY());
  add('all three repeated', body, { [ID]: [id, id], [TS]: [String(t), String(t)], [SIG]: [good[SIG] as string, good[SIG] as string] }, SIGNATURE_ONLY());

  // Wrongly typed fields: each field replaced, or removed; unsigned, and signed over the wrong
  // body itself (what only the secret's holder could send: still not a phase call, so still
  // refused). Signed over the valid call instead is a body changed after signing, above.
  for (const field of FIELDS) {
    const replaced: [string, Record<string, unknown>][] = wrongValuesFor(call, field).map((value) => [
      `${field} = ${(JSON.stringify(value) ?? String(value)).slice(0, 30)}`,
      { ...body, [field]: value },
    ]);
    replaced.push([`${field} removed`, Object.fromEntries(Object.entries(body).filter(([k]) => k !== field))]);
    for (const [label, wrong] of replaced) {
      add(`${label}, unsigned`, wrong, undefined, MISSING);
      const wrongId = idOf(wrong);
      add(`${label}, signed over itself`, wrong, signed(key, wrongId, JSON.stringify(wrong)), WRONG_CALL, arrivesAsSent(wrongId) ? undefined : SIGNATURE_ONLY());
    }
  }
  // Wrong values inside the payload: unsigned everywhere; signed on phase 1, where the business
  // validates them and refuses (409), keeping nothing. (A signed phase 2 with another payload
  // is a genuine call: a null compensation, say, which rightly leaves its barrier marker.)
  // msg's phase 1 is the sender's own local transaction: its `check` runs no business (the barrier answers it).
  const isPhase1 = call.mode !== 'msg' && call.mode !== 'workflow' && MODE_PHASES[call.mode].phase1 === call.phase;
  for (const [member, values] of [['accountId', WRONG_ACCOUNT_IDS], ['amount', WRONG_AMOUNTS]] as const) {
    for (const value of values) {
      const wrong = { ...body, payload: { ...payload, [member]: value } };
      const label = `payload.${member} = ${(JSON.stringify(value) ?? String(value)).slice(0, 30)}`;
      add(`${label}, unsigned`, wrong, undefined, MISSING);
      if (isPhase1) add(`${label}, signed over itself (phase 1)`, wrong, signed(key, idOf(wrong), JSON.stringify(wrong)), { status: 409, code: 'BUSINESS_FAILURE' });
    }
  }
  return list;
}

/** A header value Node can send (the 10 000-character id, say, can; a newline cannot). */
const sendableHeader = (value: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(value);
/** A header value that arrives over HTTP as it was sent: printable ASCII, no whitespace around it. */
const arrivesAsSent = (value: string) => /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value);

function toHttp(variant: Variant, call: PhaseCallBody): HttpProbe | null {
  const { sig } = variant;
  if (typeof sig !== 'function' && !Object.values(sig ?? {}).flat().every(sendableHeader)) return null;
  const json = { 'content-type': 'application/json' };
  return {
    label: variant.label,
    path: pathOf(variant.body, call),
    body: JSON.stringify(variant.body),
    headers: typeof sig === 'function' ? () => ({ ...json, ...sig() }) : { ...json, ...(sig ?? {}) },
    expect: variant.httpExpect ?? variant.expect,
  };
}

function toMessage(variant: Variant): MessageProbe {
  const { sig, body } = variant;
  if (typeof sig === 'function') return { label: variant.label, lateData: () => ({ ...body, headers: sig() }), expect: variant.expect };
  return { label: variant.label, data: sig === undefined ? body : { ...body, headers: sig }, expect: variant.expect };
}

/** 20 MB of spaces, gzipped: a small body the parser would inflate past its limit. */
const GZIP_BOMB = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20));

/** Probes only HTTP has: bytes that are no JSON, content types and encodings, sizes, paths. */
function httpProbes(call: PhaseCallBody, key: Buffer, withSizes: boolean): HttpProbe[] {
  const list: HttpProbe[] = [];
  const text = JSON.stringify(call);
  const id = callId(call);
  const path = `/tx/${call.action}/${call.phase}`;
  const json = { 'content-type': 'application/json' };
  const add = (label: string, body: string | Buffer, headers: Record<string, string | string[]>, expectation: Expectation, at = path, chunked = false) =>
    list.push({ label, path: at, body, headers, expect: expectation, chunked });

  // Malformed: no JSON, cut short, JSON that is no object; unsigned and signed over those very bytes.
  for (const raw of [
    '',
    ' ',
    'not json',
    '{',
    '{"gid":',
    text.slice(0, -1),
    text.slice(0, Math.floor(text.length / 2)),
    `${text}garbage`,
    `${text}${text}`,
    '{"gid":"x",}',
    "{'gid':'x'}",
    '\u0000',
    `\uFEFF${text}`,
    '[]',
    `[${text}]`,
    '"text"',
    JSON.stringify(text),
    'null',
    '42',
    'true',
    '['.repeat(50_000) + ']'.repeat(50_000),
  ]) {
    const label = `body ${JSON.stringify(raw.slice(0, 24))}`;
    add(`${label}, unsigned`, raw, json, ANY_4XX);
    add(`${label}, signed over it`, raw, { ...json, ...signed(key, id, raw) }, ANY_4XX);
  }
  // Whitespace added after signing: the bytes differ, so the signature does.
  for (const [label, respaced] of [
    ['a leading space', ` ${text}`],
    ['a trailing newline', `${text}\n`],
    ['pretty-printed', JSON.stringify(call, null, 2)],
    ['spaces after colons', text.replaceAll('":', '": ')],
  ]) {
    add(`${label} added after signing`, respaced, { ...json, ...signed(key, id, text) }, INVALID);
  }
  // A duplicate member appended after signing (JSON.parse keeps the last one).
  add('a duplicate gid appended after signing', `${text.slice(0, -1)},"gid":"${call.gid}-other"}`, { ...json, ...signed(key, id, text) }, INVALID);
  add('a duplicate payload appended after signing', `${text.slice(0, -1)},"payload":{"accountId":"mallory","amount":99999999}}`, { ...json, ...signed(key, id, text) }, INVALID);

  // Content types and charsets: signed over the exact bytes, and unsigned.
  const good = signed(key, id, text);
  for (const contentType of [
    null,
    '',
    'text/plain',
    'text/json',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/octet-stream',
    'application/vnd.api+json',
    'application/json-patch+json',
    'application/jsonx',
    'json',
    '*/*',
    'application/*',
    'application/json; charset=utf-16',
    'application/json; charset=utf-16le',
    'application/json; charset=utf-32',
    'application/json; charset=latin1',
    'application/json; charset=iso-8859-1',
    'application/json; charset=us-ascii',
    'application/json; charset=utf8',
    'application/json; charset=unknown',
    'application/json; charset=utf-7',
  ]) {
    const headers: Record<string, string> = contentType === null ? {} : { 'content-type': contentType };
    add(`content-type ${JSON.stringify(contentType)}, signed`, text, { ...headers, ...good }, ANY_4XX);
    add(`content-type ${JSON.stringify(contentType)}, unsigned`, text, headers, ANY_4XX);
  }
  const utf16 = Buffer.from(text, 'utf16le');
  add('UTF-16 bytes, declared, signed over them', utf16, { 'content-type': 'application/json; charset=utf-16le', ...signed(key, id, utf16) }, ANY_4XX);
  add('UTF-16 bytes, declared as JSON, signed over them', utf16, { ...json, ...signed(key, id, utf16) }, ANY_4XX);
  // Content encodings: unknown ones, bytes that are not what they claim, and a gzip bomb.
  for (const [encoding, bytes] of [
    ['gzip', Buffer.from(text)],
    ['deflate', Buffer.from(text)],
    ['br', Buffer.from(text)],
    ['x-unknown', Buffer.from(text)],
    ['compress', Buffer.from(text)],
    ['gzip, gzip', gzipSync(Buffer.from(text))],
    ['gzip', GZIP_BOMB],
  ] as const) {
    add(`content-encoding ${encoding} (${bytes.length} bytes), signed over them`, bytes, { ...json, 'content-encoding': encoding, ...signed(key, id, bytes) }, ANY_4XX);
    add(`content-encoding ${encoding} (${bytes.length} bytes), unsigned`, bytes, { ...json, 'content-encoding': encoding }, ANY_4XX);
  }

  // Oversized: over the participant's body limit (Express's 100 kB), signed and unsigned.
  if (withSizes) {
    for (const size of [102_401, 200_000, 2_000_000]) {
      const big = JSON.stringify({ ...call, payload: { ...(call.payload as object), padding: 'x'.repeat(size) } });
      const bigSig = signed(key, id, big);
      add(`${big.length} bytes, signed`, big, { ...json, ...bigSig }, { status: 413, code: 'PAYLOAD_TOO_LARGE' });
      add(`${big.length} bytes, unsigned`, big, json, MISSING);
      add(`${big.length} bytes, chunked, signed`, big, { ...json, ...bigSig }, { status: 413, code: 'PAYLOAD_TOO_LARGE' }, path, true);
    }
  }

  // A path that does not match the body (the body itself validly signed).
  const otherAction = call.action === 'debit' ? 'credit' : 'debit';
  for (const wrongPath of [
    `/tx/${otherAction}/${call.phase}`,
    ...PHASES.filter((p) => p !== call.phase).map((p) => `/tx/${call.action}/${p}`),
    `/tx/transfer/${call.phase}`,
    `/tx/${call.action.toUpperCase()}/${call.phase}`,
    `/tx/${call.action}/${call.phase.toUpperCase()}`,
    `/tx/${call.action}%20/${call.phase}`,
    `/tx/${call.action}%00/${call.phase}`,
    `/tx/..%2F${call.action}/${call.phase}`,
    `/tx/..%2F..%2Fetc%2Fpasswd/${call.phase}`,
    `/tx/%2e%2e/${call.phase}`,
    `/tx/${call.action}/${call.phase}%2F..`,
    `/tx/cr%E0%A4%A/${call.phase}`,
    `/tx/${call.action}/%ZZ`,
    `/tx/${'x'.repeat(2_000)}/${call.phase}`,
    `/tx/${call.action}%2F${call.phase}/x`,
  ]) {
    add(`path ${wrongPath.slice(0, 50)}`, text, { ...json, ...good }, ANY_4XX, wrongPath);
  }
  return list;
}

/** Probes only the message transports have: data that is no object, the headers member wrong, large and deep messages. */
function messageProbes(call: PhaseCallBody, key: Buffer, withSizes: boolean): MessageProbe[] {
  const list: MessageProbe[] = [];
  const text = JSON.stringify(call);
  const good = signed(key, callId(call), text);
  const add = (label: string, data: unknown, expectation: Expectation) => list.push({ label, data, expect: expectation });
  const t = good[TS] as string;

  for (const headers of [null, 'text', 5, true, [], [good], JSON.stringify(good), { ...good, [TS]: Number(t) }, { ...good, [ID]: [good[ID]] }, { ...good, [SIG]: [good[SIG]] }]) {
    add(`headers member ${(JSON.stringify(headers) ?? '').slice(0, 40)}`, { ...call, headers }, MISSING);
  }
  add('headers member with capitalised names', { ...call, headers: Object.fromEntries(Object.entries(good).map(([n, v]) => [n.toUpperCase(), v])) }, MISSING);
  add('headers member with values as objects', { ...call, headers: Object.fromEntries(Object.entries(good).map(([n, v]) => [n, { value: v }])) }, MISSING);
  add('signature values inside the payload', { ...call, payload: { ...(call.payload as object), headers: good } }, MISSING);
  add('signature values at the top level', { ...call, ...good }, MISSING);
  add('data: the signed message as a JSON string', JSON.stringify({ ...call, headers: good }), MISSING);
  add('data: the signed message in an array', [{ ...call, headers: good }], MISSING);

  if (withSizes) {
    for (const size of [1_000_000, 4_000_000]) {
      const big = { ...call, payload: { ...(call.payload as object), padding: 'x'.repeat(size) } };
      add(`${size} bytes, unsigned`, big, MISSING);
      add(`${size} bytes, signed before the padding`, { ...big, headers: good }, INVALID);
      add(`${size} bytes, forged signature`, { ...big, headers: { ...good, [SIG]: `v1,${randomBytes(32).toString('base64')}` } }, INVALID);
    }
  }
  return list;
}

/** Data of every kind that is no phase call at all, once per transport. */
function messageShapeProbes(call: PhaseCallBody): MessageProbe[] {
  const list: MessageProbe[] = [];
  const text = JSON.stringify(call);
  for (const data of ['not json', '{"gid":', text.slice(0, -1), '', ' ', 'null', '[]', 0, 42, -1, 1e308, true, false, [], [1, 2], [[[]]], {}, { headers: {} }]) {
    list.push({ label: `data ${(JSON.stringify(data) ?? '').slice(0, 30)}`, data, expect: MISSING });
  }
  // What a ClientProxy will not send (it refuses null and undefined data): packets written by hand.
  list.push({ label: 'data null (raw packet)', raw: 'null', expect: MISSING });
  list.push({ label: 'no data member (raw packet)', raw: '', expect: MISSING });
  // Nesting deeper than JSON.stringify can write back (the signed content is the data re-serialised).
  for (const depth of [5_000, 20_000, 100_000]) {
    list.push({ label: `data nested ${depth} deep`, raw: '['.repeat(depth) + ']'.repeat(depth), expect: ANY_4XX });
    list.push({ label: `payload nested ${depth} deep`, raw: `${text.slice(0, -1)},"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`, expect: ANY_4XX });
    list.push({ label: `headers member nested ${depth} deep`, raw: `${text.slice(0, -1)},"headers":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`, expect: ANY_4XX });
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Sending, and judging the answers.

function httpPost(port: number, probe: HttpProbe): Promise<RawAnswer> {
  const headers = typeof probe.headers === 'function' ? probe.headers() : { ...probe.headers };
  return rawHttp(port, { method: 'POST', path: probe.path, headers, body: probe.body, chunked: probe.chunked });
}

/** Whether an error body is a refusal as expected: a 4xx with a stable code (and the exact status and code when the probe names them). */
function refusedAsExpected(status: number, body: unknown, expectation: Expectation): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const { statusCode, error } = body as { statusCode?: unknown; error?: unknown };
  const statusOk = expectation.status === undefined ? status >= 400 && status < 500 : status === expectation.status;
  return statusOk && statusCode === status && typeof error === 'string' && CODES.has(error) && (expectation.code === undefined || error === expectation.code);
}

/** Sends `size` at a time, like bad-input's sendProbes. */
async function inBatches<T>(items: T[], size: number, each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(each));
}

async function sendHttpProbes(port: number, probes: HttpProbe[]): Promise<{ sent: number; failures: string[] }> {
  const failures: string[] = [];
  let sent = 0;
  await inBatches(probes, 25, async (probe) => {
    const where = `${probe.label} [POST ${probe.path.slice(0, 60)}]`;
    try {
      const { status, text } = await httpPost(port, probe);
      sent++;
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!refusedAsExpected(status, body, probe.expect)) failures.push(`${where} -> ${status} ${text.slice(0, 160)} (expected ${JSON.stringify(probe.expect)})`);
    } catch (error) {
      sent++;
      failures.push(`${where} -> no answer: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  return { sent, failures };
}

/** Sends packets by hand: on TCP framed as Nest's JsonSocket frames them, on Redis published to the pattern's channel. */
interface RawSender {
  /** The reply packet (`{ id, err | response }`), or null when the connection closed without one. */
  send(dataText: string): Promise<{ err?: unknown; response?: unknown } | null>;
  /** Bytes that are no packet at all: whether anything came back, the other side closed, or nothing happened. */
  garbage(text: string): Promise<'answered' | 'closed' | 'silent'>;
  close(): Promise<void>;
}

function packetText(pattern: unknown, dataText: string, id: string): string {
  return dataText === '' ? `{"pattern":${JSON.stringify(pattern)},"id":"${id}"}` : `{"pattern":${JSON.stringify(pattern)},"data":${dataText},"id":"${id}"}`;
}

function rawTcp(port: number): RawSender {
  type Outcome = { reply: { err?: unknown; response?: unknown } } | 'closed' | 'silent';
  const exchange = (bytes: string, waitMs: number) =>
    new Promise<Outcome>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let buffer = '';
      let settled = false;
      const done = (value: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(value);
      };
      const timer = setTimeout(() => done('silent'), waitMs);
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        const hash = buffer.indexOf('#');
        if (hash < 0) return;
        const length = Number(buffer.slice(0, hash));
        if (buffer.length - hash - 1 >= length) done({ reply: JSON.parse(buffer.slice(hash + 1, hash + 1 + length)) as { err?: unknown; response?: unknown } });
      });
      socket.on('close', () => done('closed'));
      socket.on('error', () => done('closed'));
      socket.write(bytes);
    });
  return {
    async send(dataText) {
      const packet = packetText(BRANCH_MESSAGE_PATTERN, dataText, randomBytes(8).toString('hex'));
      const outcome = await exchange(`${packet.length}#${packet}`, 10_000);
      return typeof outcome === 'object' ? outcome.reply : null;
    },
    async garbage(text) {
      const outcome = await exchange(text, 1_000);
      return typeof outcome === 'object' ? 'answered' : outcome;
    },
    async close() {},
  };
}

function rawRedis(participant: string): RawSender {
  const pattern = redisBranchPattern(participant);
  const channel = `{"cmd":"${pattern.cmd}","participant":"${pattern.participant}"}`;
  const pub = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const sub = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const waiting = new Map<string, (reply: { err?: unknown; response?: unknown }) => void>();
  const subscribed = sub.subscribe(`${channel}.reply`);
  sub.on('message', (_channel: string, message: string) => {
    const reply = JSON.parse(message) as { id?: string; err?: unknown; response?: unknown };
    if (reply.id) waiting.get(reply.id)?.(reply);
  });
  return {
    async send(dataText) {
      await subscribed;
      const id = randomBytes(8).toString('hex');
      const reply = new Promise<{ err?: unknown; response?: unknown } | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 10_000);
        waiting.set(id, (value) => {
          clearTimeout(timer);
          resolve(value);
        });
      });
      await pub.publish(channel, packetText(pattern, dataText, id));
      return reply;
    },
    async garbage(text) {
      // No packet, so no id a reply could carry: nothing can come back.
      await pub.publish(channel, text);
      return 'silent';
    },
    async close() {
      await Promise.all([pub.quit(), sub.quit()]);
    },
  };
}

async function sendMessageProbes(client: ClientProxy, pattern: unknown, raw: RawSender, probes: MessageProbe[]): Promise<{ sent: number; failures: string[] }> {
  const failures: string[] = [];
  let sent = 0;
  // More at a time than over HTTP: a round trip on the TCP transport takes some 40 ms however small (Nagle and delayed ACKs).
  await inBatches(probes, 100, async (probe) => {
    let error: unknown;
    let reply: unknown;
    let answered = false;
    if (probe.raw !== undefined) {
      const packet = await raw.send(probe.raw);
      answered = packet !== null;
      if (packet && packet.err !== undefined) error = packet.err;
      else reply = packet?.response;
    } else {
      try {
        reply = await firstValueFrom(client.send<unknown>(pattern as string, probe.lateData ? probe.lateData() : probe.data).pipe(timeout(10_000)));
        answered = true;
      } catch (e) {
        error = e;
        answered = !(e instanceof Error && e.name === 'TimeoutError');
      }
    }
    sent++;
    const status = typeof error === 'object' && error !== null ? (error as { statusCode?: unknown }).statusCode : undefined;
    // A business refusal is no error on these transports but the reply `{ outcome: 'failed' }` (PROTOCOL.md 5.2: the 409 equivalent).
    const refusedByBusiness = probe.expect.code === 'BUSINESS_FAILURE' && error === undefined && (reply as { outcome?: unknown } | undefined)?.outcome === 'failed';
    const ok = refusedByBusiness || (error !== undefined && typeof status === 'number' && refusedAsExpected(status, error, probe.expect));
    if (!ok) {
      const what = !answered ? 'no answer' : error !== undefined ? `error ${JSON.stringify(error)?.slice(0, 160)}` : `reply ${JSON.stringify(reply)?.slice(0, 160)}`;
      failures.push(`${probe.label} -> ${what} (expected ${JSON.stringify(probe.expect)})`);
    }
  });
  return { sent, failures };
}

// ---------------------------------------------------------------------------------------------
// What each service holds.

async function query<T extends pg.QueryResultRow>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Everything a call could store: accounts, pending credits, the barrier (full rows, ordered) and prepared transactions. */
async function snapshot(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const accounts = await client.query('SELECT * FROM accounts ORDER BY id');
    const pending = await client.query('SELECT * FROM pending_credits ORDER BY gid, branch_id');
    const barrier = await client.query('SELECT * FROM dtx_barrier ORDER BY gid, branch_id, phase');
    const prepared = await client.query('SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid');
    return JSON.stringify({ accounts: accounts.rows, pending: pending.rows, barrier: barrier.rows, prepared: prepared.rows });
  } finally {
    await client.end();
  }
}

const balanceOf = async (p: Participant, id: string) => (await query<{ balance: string }>(p.db.url, 'SELECT balance FROM accounts WHERE id = $1', [id]))[0]?.balance;

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  // The test's ClientProxy sees the replies to the packets sent by hand on Redis and logs each at debug level.
  Logger.overrideLogger(['error', 'warn']);
  const dbs = await Promise.all(['pbad_coord', 'pbad_http', 'pbad_tcp', 'pbad_redis'].map((p) => createTestDatabase(p)));
  coordDb = dbs[0];
  keys = generateApiKeys();
  coord = await coordinator('participant-bad-input-coordinator', coordDb.url, { API_KEYS: keys.API_KEYS, REDIS_URL, LOG_LEVEL: 'warn' });
  await coord.start();
  await Promise.all(
    TRANSPORTS.map(async (transport, i) => {
      const service = await accountService(nameOf(transport), dbs[i + 1].url, coord.url, transport, keys.participant);
      await service.start();
      participants.set(transport, { transport, name: nameOf(transport), service, db: dbs[i + 1], key: Buffer.alloc(0) });
    }),
  );
  // Each service's secret, as the coordinator hands it out: register it again, with the
  // participant key and exactly what it registered (the same key gets the same secret).
  const listed = await getJson<ParticipantView[]>(`${coord.url}/v1/participants`, keys.participant);
  for (const p of participants.values()) {
    const mine = listed.find((l) => l.name === p.name)!;
    const address = p.transport === 'http' ? { endpoint: mine.endpoint } : p.transport === 'tcp' ? { host: mine.host, port: mine.port } : {};
    const answer = await postJson<ParticipantRegistrationView>(`${coord.url}/v1/participants`, { name: p.name, transport: p.transport, ...address, actions: mine.actions }, keys.participant);
    expect([200, 201]).toContain(answer.status);
    p.key = parseSigningSecret(answer.body.signingSecret);
    if (p.transport === 'tcp') p.tcpPort = mine.port!;
  }
  for (const p of participants.values()) {
    await openAccount(p.service, 'mallory', 0);
    await openAccount(p.service, 'alice', 1_000);
  }
});

afterAll(async () => {
  await Promise.all([...participants.values()].map((p) => p.service.process.kill()));
  await coord?.process.kill();
  await Promise.all([coordDb, ...[...participants.values()].map((p) => p.db)].filter(Boolean).map((d) => d.drop()));
});

const others = (p: Participant) => [...participants.values()].filter((o) => o !== p).map((o) => o.key);

describe('hostile input at the participant', () => {
  it('refuses a forged credit sent straight to the HTTP service: 401, no money, no barrier row', async () => {
    const http = participants.get('http')!;
    const body = '{"gid":"forged-1","branchId":"credit","mode":"saga","action":"credit","phase":"execute","payload":{"accountId":"mallory","amount":1000000}}';
    const response = await fetch(`${http.service.url}/tx/credit/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ statusCode: 401, error: 'SIGNATURE_MISSING', message: expect.any(String) });
    expect(await balanceOf(http, 'mallory')).toBe('0');
    expect(await query(http.db.url, `SELECT * FROM dtx_barrier WHERE gid = 'forged-1'`)).toEqual([]);
  });

  it('over HTTP: refuses every malformed, oversized, wrongly typed, forged, replayed, misdirected or tampered call with a 4xx and a stable code, and stores nothing', async () => {
    const p = participants.get('http')!;
    const before = await snapshot(p.db.url);
    const probes = validCalls('http').flatMap((call, i) => [
      ...variants(call, p.key, others(p))
        .map((v) => toHttp(v, call))
        .filter((probe): probe is HttpProbe => probe !== null),
      ...httpProbes(call, p.key, i < 2),
    ]);
    const port = Number(new URL(p.service.url).port);
    const { sent, failures } = await sendHttpProbes(port, probes);
    console.log(`participant bad-input suite (http): ${sent} requests sent, ${failures.length} without a 4xx and a stable code`);
    for (const failure of failures) console.log(`  ${failure}`);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(5_000);
    expect(await snapshot(p.db.url)).toBe(before);

    // The control: a correctly signed, legitimate call runs, and shows in the snapshot.
    const control: PhaseCallBody = { gid: `control-http-${run}`, branchId: 'b1', mode: 'saga', action: 'credit', phase: 'execute', payload: { accountId: 'mallory', amount: 1 } };
    const text = JSON.stringify(control);
    const answer = await httpPost(port, { label: 'control', path: '/tx/credit/execute', body: text, headers: { 'content-type': 'application/json', ...signed(p.key, callId(control), text) }, expect: {} });
    expect(answer).toEqual({ status: 200, text: JSON.stringify({ accountId: 'mallory', credited: 1 }) });
    expect(await snapshot(p.db.url)).not.toBe(before);
    expect(await balanceOf(p, 'mallory')).toBe('1');
  });

  describe.each([{ transport: 'tcp' as const }, { transport: 'redis' as const }])('over $transport', ({ transport }) => {
    let client: ClientProxy;
    let pattern: unknown;
    let raw: RawSender;

    beforeAll(async () => {
      const p = participants.get(transport)!;
      if (transport === 'tcp') {
        client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port: p.tcpPort! } });
        pattern = BRANCH_MESSAGE_PATTERN;
        raw = rawTcp(p.tcpPort!);
      } else {
        client = ClientProxyFactory.create({ transport: Transport.REDIS, options: redisTransportOptions(REDIS_URL) });
        pattern = redisBranchPattern(p.name);
        raw = rawRedis(p.name);
      }
      await client.connect();
    });

    afterAll(async () => {
      await client?.close();
      await raw?.close();
    });

    it('refuses every malformed, large, wrongly typed, forged, replayed or tampered message with an error carrying a 4xx and a stable code, and stores nothing', async () => {
      const p = participants.get(transport)!;
      const before = await snapshot(p.db.url);
      const calls = validCalls(transport);
      const probes = [
        ...calls.flatMap((call, i) => [...variants(call, p.key, others(p)).map(toMessage), ...messageProbes(call, p.key, i < 2)]),
        ...messageShapeProbes(calls[0]),
      ];
      const { sent, failures } = await sendMessageProbes(client, pattern, raw, probes);
      console.log(`participant bad-input suite (${transport}): ${sent} requests sent, ${failures.length} without a 4xx and a stable code`);
      for (const failure of failures) console.log(`  ${failure}`);

      // Bytes that are no packet at all (no JSON, a corrupt length, no id) cannot be answered:
      // the service drops them (TCP: closes that connection) and stays up, as the control below shows.
      const garbage = ['9#not json!', 'x#{}', '4#[1,2', '-1#{}', '2#{}', `${'9'.repeat(20)}#{}`, 'no frame at all'];
      const outcomes = await Promise.all(garbage.map((g) => raw.garbage(g)));
      const count = (o: string) => outcomes.filter((x) => x === o).length;
      console.log(`participant bad-input suite (${transport}): ${garbage.length} frames that are no packet, ${count('answered')} answered, ${count('closed')} closed the connection, ${count('silent')} ignored`);
      expect(count('answered')).toBe(0);

      expect(failures).toEqual([]);
      expect(sent).toBeGreaterThanOrEqual(5_000);
      expect(await snapshot(p.db.url)).toBe(before);

      // The control: a correctly signed, legitimate call runs, and shows in the snapshot.
      const control: PhaseCallBody = { gid: `control-${transport}-${run}`, branchId: 'b1', mode: 'saga', action: 'credit', phase: 'execute', payload: { accountId: 'mallory', amount: 1 } };
      const reply = await firstValueFrom(client.send<unknown>(pattern as string, { ...control, headers: signed(p.key, callId(control), JSON.stringify(control)) }).pipe(timeout(10_000)));
      expect(reply).toEqual({ outcome: 'ok', result: { accountId: 'mallory', credited: 1 } });
      expect(await snapshot(p.db.url)).not.toBe(before);
      expect(await balanceOf(p, 'mallory')).toBe('1');
    });
  });
});
