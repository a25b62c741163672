import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  callId,
  formatSigningSecret,
  parseSigningSecret,
  signCall,
  SignatureError,
  splitSignedMessage,
  verifyCall,
} from './signing.js';

const key = randomBytes(32);
const other = randomBytes(32);
const body = JSON.stringify({ gid: 'g-1', branchId: 'b1', mode: 'tcc', action: 'debit', phase: 'try', payload: { amount: 5 } });
const id = callId({ gid: 'g-1', branchId: 'b1', phase: 'try' });
const now = 1_800_000_000;

describe('signed calls (PROTOCOL.md 5.5)', () => {
  it('names a call {gid}/{branchId}/{phase}', () => {
    expect(id).toBe('g-1/b1/try');
  });

  it('writes and reads whsec_ secrets, refusing what is not one', () => {
    expect(parseSigningSecret(formatSigningSecret(key)).equals(key)).toBe(true);
    expect(() => parseSigningSecret(key.toString('base64'))).toThrow(/whsec_/);
    expect(() => parseSigningSecret('whsec_not base64!')).toThrow(/base64/);
    expect(() => parseSigningSecret(`whsec_${randomBytes(8).toString('base64')}`)).toThrow(/24 to 64 bytes/);
  });

  it('verifies its own signature, and refuses every change to what was signed', () => {
    const headers = signCall([key], id, now, body);
    expect(verifyCall([key], headers, body, now)).toEqual({ ok: true });
    expect(verifyCall([key], headers, Buffer.from(body), now + 299)).toEqual({ ok: true });
    const changedBody = body.replace('"amount":5', '"amount":500');
    expect(verifyCall([key], headers, changedBody, now)).toMatchObject({ ok: false, code: SignatureError.INVALID });
    expect(verifyCall([key], { ...headers, 'webhook-id': 'g-1/b1/confirm' }, body, now)).toMatchObject({ code: SignatureError.INVALID });
    expect(verifyCall([key], { ...headers, 'webhook-timestamp': String(now + 1) }, body, now)).toMatchObject({ code: SignatureError.INVALID });
  });

  it('refuses a call signed with another participant\'s secret', () => {
    expect(verifyCall([key], signCall([other], id, now, body), body, now)).toMatchObject({ ok: false, code: SignatureError.INVALID });
  });

  it('refuses timestamps more than five minutes away, either way', () => {
    const headers = signCall([key], id, now, body);
    expect(verifyCall([key], headers, body, now + 301)).toMatchObject({ code: SignatureError.EXPIRED });
    expect(verifyCall([key], headers, body, now - 301)).toMatchObject({ code: SignatureError.EXPIRED });
  });

  it('refuses missing, repeated and malformed headers with their own codes', () => {
    const headers = signCall([key], id, now, body);
    expect(verifyCall([key], {}, body, now)).toMatchObject({ code: SignatureError.MISSING });
    expect(verifyCall([key], { ...headers, 'webhook-signature': '' }, body, now)).toMatchObject({ code: SignatureError.MISSING });
    expect(verifyCall([key], { ...headers, 'webhook-id': [id, id] }, body, now)).toMatchObject({ code: SignatureError.MISSING });
    expect(verifyCall([key], { ...headers, 'webhook-timestamp': '1e9' }, body, now)).toMatchObject({ code: SignatureError.MALFORMED });
    expect(verifyCall([key], { ...headers, 'webhook-signature': 'v2,abc' }, body, now)).toMatchObject({ code: SignatureError.MALFORMED });
    expect(verifyCall([key], { ...headers, 'webhook-signature': 'v1,'.padEnd(2000, 'A') }, body, now)).toMatchObject({ code: SignatureError.MALFORMED });
    expect(verifyCall([], headers, body, now)).toMatchObject({ code: SignatureError.NO_SECRET });
  });

  it('sends old and new signatures side by side during a rotation, and either secret verifies', () => {
    const headers = signCall([key, other], id, now, body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verifyCall([key], headers, body, now)).toEqual({ ok: true });
    expect(verifyCall([other], headers, body, now)).toEqual({ ok: true });
    expect(verifyCall([randomBytes(32)], headers, body, now)).toMatchObject({ code: SignatureError.INVALID });
  });

  it('agrees with the Standard Webhooks reference library, both ways', () => {
    const reference = new Webhook(formatSigningSecret(key));
    const at = Math.floor(Date.now() / 1000);
    const ours = signCall([key], id, at, body);
    expect(reference.verify(body, ours)).toEqual(JSON.parse(body));
    const theirs = reference.sign(id, new Date(at * 1000), body);
    expect(theirs).toBe(ours['webhook-signature']);
    expect(verifyCall([key], { 'webhook-id': id, 'webhook-timestamp': String(at), 'webhook-signature': theirs }, body, at)).toEqual({ ok: true });
  });

  it('on the message transports, signs the data without its headers member as JSON.stringify writes it', () => {
    const call = JSON.parse(body) as Record<string, unknown>;
    const headers = signCall([key], id, now, JSON.stringify(call));
    // What a NestJS transport delivers: the data serialised and parsed again, headers last.
    const delivered: unknown = JSON.parse(JSON.stringify({ ...call, headers }));
    const split = splitSignedMessage(delivered);
    expect(split?.body).toBe(body);
    expect(verifyCall([key], split!.headers, split!.body, now)).toEqual({ ok: true });
    const tampered = { ...(delivered as Record<string, unknown>), payload: { amount: 6 } };
    const splitTampered = splitSignedMessage(tampered)!;
    expect(verifyCall([key], splitTampered.headers, splitTampered.body, now)).toMatchObject({ code: SignatureError.INVALID });
    expect(splitSignedMessage('not an object')).toBeNull();
    expect(splitSignedMessage({ ...call })?.headers).toEqual({});
  });
});
