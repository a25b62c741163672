import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PhaseCallBody } from './participant-call.js';

/**
 * Signed calls (PROTOCOL.md 5.5): the three headers of the Standard Webhooks specification,
 * HMAC-SHA256 over `{id}.{timestamp}.{raw body}` with the participant's own secret. The
 * coordinator signs with `signCall`, participants check with `verifyCall`; both are pure.
 */
export const SIGNATURE_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** How far a call's timestamp may be from the participant's clock (PROTOCOL.md 5.5: 5 minutes). */
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

/** `whsec_` + base64 of the key bytes: how a signing secret is written (PROTOCOL.md 4). */
export const SIGNING_SECRET_PREFIX = 'whsec_';

/** Stable codes of a refused signature; every one is answered 401. */
export const SignatureError = {
  /** One of the three headers is absent or empty. */
  MISSING: 'SIGNATURE_MISSING',
  /** The headers are there but unreadable: a timestamp that is no integer, no `v1,` signature, too long. */
  MALFORMED: 'SIGNATURE_MALFORMED',
  /** The timestamp is more than the tolerance away from this clock (a replay, or a skewed clock). */
  EXPIRED: 'SIGNATURE_EXPIRED',
  /** No signature matches any secret of this participant: forged, changed after signing, or for someone else. */
  INVALID: 'SIGNATURE_INVALID',
  /** This participant has no secret yet (it has not registered), so it cannot accept any call. */
  NO_SECRET: 'SIGNATURE_NO_SECRET',
} as const;
export type SignatureError = (typeof SignatureError)[keyof typeof SignatureError];

export type SignedCallHeaders = {
  [SIGNATURE_HEADERS.id]: string;
  [SIGNATURE_HEADERS.timestamp]: string;
  [SIGNATURE_HEADERS.signature]: string;
};

export type SignatureCheck = { ok: true } | { ok: false; code: SignatureError; reason: string };

/** Headers as any transport hands them over (Node's IncomingHttpHeaders fits): missing, one value, or repeated. */
export type PresentedSignatureHeaders = { readonly [name: string]: string | string[] | undefined };

/** A signature header longer than this is refused unread: ten signatures fit with room to spare. */
const MAX_SIGNATURE_HEADER = 1024;
/** Signatures checked at most per call, so a header cannot make a participant hash without end. */
const MAX_SIGNATURES = 10;

/** The `webhook-id` of a call: `{gid}/{branchId}/{phase}` (PROTOCOL.md 5.5). */
export function callId(body: Pick<PhaseCallBody, 'gid' | 'branchId' | 'phase'>): string {
  return `${body.gid}/${body.branchId}/${body.phase}`;
}

export function formatSigningSecret(key: Buffer): string {
  return `${SIGNING_SECRET_PREFIX}${key.toString('base64')}`;
}

/** The key bytes of a `whsec_<base64>` secret; throws one line (without the secret) when it is not one. */
export function parseSigningSecret(secret: string): Buffer {
  if (!secret.startsWith(SIGNING_SECRET_PREFIX)) throw new Error(`a signing secret starts with ${SIGNING_SECRET_PREFIX}`);
  const encoded = secret.slice(SIGNING_SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new Error('a signing secret is whsec_ followed by base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < 24 || key.length > 64) throw new Error('a signing secret holds 24 to 64 bytes');
  return key;
}

function hmac(key: Buffer, id: string, timestamp: string, body: string | Buffer): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

/**
 * The three headers of a call signed at `timestampSeconds` with every key given (the current
 * secret first; during a rotation the previous one too, space-separated).
 */
export function signCall(keys: readonly Buffer[], id: string, timestampSeconds: number, body: string | Buffer): SignedCallHeaders {
  const timestamp = String(Math.floor(timestampSeconds));
  const signatures = keys.map((key) => `v1,${hmac(key, id, timestamp, body).toString('base64')}`);
  return {
    [SIGNATURE_HEADERS.id]: id,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.signature]: signatures.join(' '),
  };
}

function single(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
  return value;
}

/** The three signature headers, read and checked for shape and freshness. */
export type ReadSignatureHeaders =
  | { ok: true; id: string; timestamp: string; signatures: Buffer[] }
  | { ok: false; code: SignatureError; reason: string };

/**
 * What can be checked of a call without its body or a key: the three headers are there, the
 * timestamp is within `toleranceSeconds` of `nowSeconds`, and at least one `v1` signature is
 * given. A participant whose HTTP server refused the body before its route ran (unreadable,
 * too large) still answers 401 when this fails (PROTOCOL.md 5.5).
 */
export function checkSignatureHeaders(
  headers: PresentedSignatureHeaders,
  nowSeconds: number,
  toleranceSeconds: number = SIGNATURE_TOLERANCE_SECONDS,
): ReadSignatureHeaders {
  const refuse = (code: SignatureError, reason: string): ReadSignatureHeaders => ({ ok: false, code, reason });
  const id = single(headers[SIGNATURE_HEADERS.id]);
  const timestamp = single(headers[SIGNATURE_HEADERS.timestamp]);
  const signature = single(headers[SIGNATURE_HEADERS.signature]);
  if (!id || !timestamp || !signature) {
    return refuse(SignatureError.MISSING, 'webhook-id, webhook-timestamp and webhook-signature are required (PROTOCOL.md 5.5)');
  }
  if (!/^\d{1,12}$/.test(timestamp)) return refuse(SignatureError.MALFORMED, 'webhook-timestamp must be Unix time in seconds');
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    return refuse(SignatureError.EXPIRED, `webhook-timestamp is more than ${toleranceSeconds} s from this participant's clock`);
  }
  if (signature.length > MAX_SIGNATURE_HEADER) return refuse(SignatureError.MALFORMED, 'webhook-signature is too long');
  const signatures = signature
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .slice(0, MAX_SIGNATURES)
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  if (signatures.length === 0) return refuse(SignatureError.MALFORMED, 'webhook-signature holds no v1 signature');
  return { ok: true, id, timestamp, signatures };
}

/**
 * Checks a call against the participant's keys: the headers as checkSignatureHeaders does,
 * and at least one `v1` signature equal (compared in constant time) to the HMAC of
 * `{id}.{timestamp}.{body}` under one of the keys. `body` must be the bytes that arrived.
 * Nothing else about the call may be trusted before this says ok.
 */
export function verifyCall(
  keys: readonly Buffer[],
  headers: PresentedSignatureHeaders,
  body: string | Buffer,
  nowSeconds: number,
  toleranceSeconds: number = SIGNATURE_TOLERANCE_SECONDS,
): SignatureCheck {
  const read = checkSignatureHeaders(headers, nowSeconds, toleranceSeconds);
  if (!read.ok) return read;
  if (keys.length === 0) return { ok: false, code: SignatureError.NO_SECRET, reason: 'this participant has no signing secret yet' };
  let matched = false;
  for (const key of keys) {
    const expected = hmac(key, read.id, read.timestamp, body);
    for (const candidate of read.signatures) {
      // timingSafeEqual needs equal lengths; a length mismatch says nothing about the key.
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) matched = true;
    }
  }
  return matched ? { ok: true } : { ok: false, code: SignatureError.INVALID, reason: 'no signature matches this participant\'s secret' };
}

/**
 * On the message transports (PROTOCOL.md 5.2) the data is the 5.1 body plus a `headers`
 * member holding the same three values; what is signed is the data without `headers`, as
 * JSON.stringify writes it (members in the order they arrived).
 */
export const MESSAGE_SIGNATURE_MEMBER = 'headers';

export type SignedPhaseCallMessage = PhaseCallBody & { [MESSAGE_SIGNATURE_MEMBER]: SignedCallHeaders };

/** The signed content and headers of a message-transport call, or null when `data` is no object. */
export function splitSignedMessage(data: unknown): { body: string; headers: PresentedSignatureHeaders } | null {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const { [MESSAGE_SIGNATURE_MEMBER]: _headers, ...rest } = data as Record<string, unknown>;
  return { body: JSON.stringify(rest), headers: messageSignatureHeaders(data) };
}

/** The three signature values a message-transport call carries in its `headers` member (none when it has none). */
export function messageSignatureHeaders(data: unknown): PresentedSignatureHeaders {
  const presented: Record<string, string> = {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return presented;
  const headers = (data as Record<string, unknown>)[MESSAGE_SIGNATURE_MEMBER];
  if (typeof headers === 'object' && headers !== null && !Array.isArray(headers)) {
    for (const name of Object.values(SIGNATURE_HEADERS)) {
      const value = (headers as Record<string, unknown>)[name];
      if (typeof value === 'string') presented[name] = value;
    }
  }
  return presented;
}
