import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@nest-dtx/protocol';
import { isLoopbackHost } from '@nest-dtx/protocol';
import { ApiKeyRing, CONSOLE_TOKEN_HEADER, consoleTokenOf, isConsoleTokenOf, keyMayUse, parseApiKeys, readAuthorization } from './api-keys.js';
import { ADMIN_CHALLENGE, decideAccess, type AccessRequest } from './authenticate.js';

const ADMIN = 'admin-key-0123456789';
const CLIENT = 'client-key-0123456789';
const PARTICIPANT = 'participant-key-0123';
const BOTH = 'client+participant-key';
const ring = new ApiKeyRing(parseApiKeys(`admin:${ADMIN},client:${CLIENT},participant:${PARTICIPANT},client+participant:${BOTH}`));
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('parseApiKeys', () => {
  it('reads role:key entries, several roles joined by +, and names each key by position', () => {
    const keys = parseApiKeys(` admin:${ADMIN} , client+participant:${BOTH}`);
    expect(keys.map((k) => [k.id, [...k.roles]])).toEqual([
      ['key#1', ['admin']],
      ['key#2', ['client', 'participant']],
    ]);
  });

  it('accepts the docker-compose defaults', () => {
    expect(parseApiKeys('admin:local-trial-admin-key,client:local-trial-client-key,participant:local-trial-participant-key')).toHaveLength(3);
  });

  it.each([
    ['no role', `${ADMIN}`, /entry 1 must look like role\[\+role\]:key/],
    ['an empty role', `:${ADMIN}`, /entry 1 must look like/],
    ['an unknown role', `root:${ADMIN}`, /entry 1 has unknown role\(s\) root/],
    ['a short key', 'admin:short', /entry 1: a key must be 16 to 256/],
    ['a key with a space', 'admin:0123456789 abcdefgh', /entry 1: a key must be/],
    ['an empty entry', `admin:${ADMIN},`, /entry 2 must look like/],
    ['a repeated key', `admin:${ADMIN},client:${ADMIN}`, /entry 2 repeats a key/],
  ])('refuses %s with a message naming the entry', (_what, spec, message) => {
    expect(() => parseApiKeys(spec)).toThrow(message);
  });

  it('never puts a key into its error message', () => {
    const secret = 'secret-value-0123456789';
    for (const spec of [`root:${secret}`, `admin:${secret},client:${secret}`, `admin:${secret} x`]) {
      expect(() => parseApiKeys(spec)).toThrow();
      try {
        parseApiKeys(spec);
      } catch (error) {
        expect((error as Error).message).not.toContain(secret);
      }
    }
  });
});

describe('ApiKeyRing.match', () => {
  it('finds the key whatever its position', () => {
    expect(ring.match(ADMIN)?.id).toBe('key#1');
    expect(ring.match(PARTICIPANT)?.id).toBe('key#3');
    expect(ring.match(BOTH)?.id).toBe('key#4');
  });

  it('refuses near misses: a prefix, an extra character, another case, empty, overlong', () => {
    for (const wrong of [ADMIN.slice(0, -1), `${ADMIN}x`, ADMIN.toUpperCase(), '', 'x'.repeat(5000)]) expect(ring.match(wrong)).toBeNull();
  });

  it('is disabled without keys', () => {
    expect(new ApiKeyRing([]).enabled).toBe(false);
    expect(ring.enabled).toBe(true);
  });
});

describe('readAuthorization', () => {
  it('reads Bearer (any case of the scheme) and Basic (the password is the key, any user)', () => {
    expect(readAuthorization(`Bearer ${CLIENT}`)).toEqual({ kind: 'key', key: CLIENT, scheme: 'bearer' });
    expect(readAuthorization(`bearer   ${CLIENT}`)).toEqual({ kind: 'key', key: CLIENT, scheme: 'bearer' });
    expect(readAuthorization(basic('anyone', ADMIN))).toEqual({ kind: 'key', key: ADMIN, scheme: 'basic' });
    expect(readAuthorization(basic('', ADMIN))).toEqual({ kind: 'key', key: ADMIN, scheme: 'basic' });
  });

  it('treats a missing or blank header as no credential', () => {
    expect(readAuthorization(undefined)).toEqual({ kind: 'none' });
    expect(readAuthorization('   ')).toEqual({ kind: 'none' });
  });

  it.each([
    ['Bearer', 'Bearer'],
    ['Bearer with spaces only', 'Bearer    '],
    ['another scheme', `Token ${CLIENT}`],
    ['a bare key', CLIENT],
    ['Basic that is not base64', 'Basic ***'],
    ['Basic without a colon', `Basic ${Buffer.from('nocolon').toString('base64')}`],
    ['Basic with an empty password', basic('user', '')],
    ['a very long header', `Bearer ${'x'.repeat(10_000)}`],
  ])('calls %s malformed', (_what, header) => {
    expect(readAuthorization(header).kind).toBe('malformed');
  });

  it('calls two Authorization headers malformed', () => {
    expect(readAuthorization([`Bearer ${CLIENT}`, `Bearer ${ADMIN}`]).kind).toBe('malformed');
  });
});

describe('role rules', () => {
  const key = (spec: string) => parseApiKeys(spec)[0];
  it('lets a key use a route needing one of its roles, and admin use every route', () => {
    expect(keyMayUse(key(`client:${CLIENT}`), ['client'])).toBe(true);
    expect(keyMayUse(key(`client:${CLIENT}`), ['participant'])).toBe(false);
    expect(keyMayUse(key(`client:${CLIENT}`), ['admin'])).toBe(false);
    expect(keyMayUse(key(`participant:${CLIENT}`), ['client', 'participant', 'admin'])).toBe(true);
    expect(keyMayUse(key(`client+participant:${CLIENT}`), ['participant'])).toBe(true);
    for (const required of [['client'], ['participant'], ['admin']] as const) expect(keyMayUse(key(`admin:${CLIENT}`), required)).toBe(true);
  });
});

/** A request of `method` with this Authorization header (and more headers). */
const send = (method: string, authorization: string | undefined, headers: Record<string, string> = {}): AccessRequest => ({
  method,
  headers: { ...(authorization === undefined ? {} : { authorization }), ...headers },
});
const get = (authorization: string | undefined): AccessRequest => send('GET', authorization);

describe('decideAccess', () => {
  it('allows the right role and says which key', () => {
    expect(decideAccess(ring, get(`Bearer ${CLIENT}`), ['client'])).toMatchObject({ allowed: true, key: { id: 'key#2' } });
    expect(decideAccess(ring, get(basic('ops', ADMIN)), ['admin'])).toMatchObject({ allowed: true, key: { id: 'key#1' } });
  });

  it('answers 401 UNAUTHENTICATED without a key, with an unknown one or a malformed header', () => {
    for (const header of [undefined, `Bearer ${CLIENT}x`, 'Bearer', basic('ops', 'wrong-password-000000')]) {
      const decision = decideAccess(ring, get(header), ['client']);
      expect(decision).toMatchObject({ allowed: false, refusal: { body: { statusCode: 401, error: ErrorCode.UNAUTHENTICATED } } });
    }
  });

  it('challenges with Basic on admin-only routes (the browser prompts) and Bearer elsewhere', () => {
    const admin = decideAccess(ring, get(undefined), ['admin']);
    const client = decideAccess(ring, get(undefined), ['client']);
    expect(!admin.allowed && admin.refusal.challenge).toBe(ADMIN_CHALLENGE);
    expect(!client.allowed && client.refusal.challenge).toBe('Bearer realm="nest-dtx"');
  });

  it('answers 403 FORBIDDEN, without a challenge, for a known key lacking the role', () => {
    const decision = decideAccess(ring, get(`Bearer ${PARTICIPANT}`), ['client']);
    expect(decision).toMatchObject({ allowed: false, refusal: { body: { statusCode: 403, error: ErrorCode.FORBIDDEN }, challenge: null } });
  });

  it('takes Basic (the browser\'s ambient login) on GET and HEAD only, unless the console token comes with it', () => {
    const adminKey = ring.match(ADMIN)!;
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const refused = decideAccess(ring, send(method, basic('ops', ADMIN)), ['admin']);
      expect(refused).toMatchObject({ allowed: false, refusal: { body: { statusCode: 401, error: ErrorCode.UNAUTHENTICATED }, challenge: 'Bearer realm="nest-dtx"' } });
      const wrongToken = decideAccess(ring, send(method, basic('ops', ADMIN), { [CONSOLE_TOKEN_HEADER]: consoleTokenOf(ring.match(CLIENT)!) }), ['admin']);
      expect(wrongToken.allowed).toBe(false);
      expect(decideAccess(ring, send(method, basic('ops', ADMIN), { [CONSOLE_TOKEN_HEADER]: consoleTokenOf(adminKey) }), ['admin']).allowed).toBe(true);
      expect(decideAccess(ring, send(method, `Bearer ${ADMIN}`), ['admin']).allowed).toBe(true);
    }
    expect(decideAccess(ring, send('HEAD', basic('ops', ADMIN)), ['admin']).allowed).toBe(true);
  });

  it('derives the same console token for the same key (every instance agrees), another for another key', () => {
    const again = new ApiKeyRing(parseApiKeys(`admin:${ADMIN}`)).match(ADMIN)!;
    expect(consoleTokenOf(again)).toBe(consoleTokenOf(ring.match(ADMIN)!));
    expect(consoleTokenOf(again)).not.toBe(consoleTokenOf(ring.match(CLIENT)!));
    expect(consoleTokenOf(again)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(isConsoleTokenOf(again, undefined)).toBe(false);
    expect(isConsoleTokenOf(again, [consoleTokenOf(again)])).toBe(false);
  });

  it('asks only for a known key when no role is given (the front door, before routing)', () => {
    expect(decideAccess(ring, get(`Bearer ${PARTICIPANT}`), null)).toMatchObject({ allowed: true });
    expect(decideAccess(ring, get(undefined), null)).toMatchObject({ allowed: false, refusal: { body: { statusCode: 401 } } });
  });
});

describe('isLoopbackHost', () => {
  it('knows the loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1', '127.0.0.1.example.com']) expect(isLoopbackHost(host)).toBe(false);
  });
});
