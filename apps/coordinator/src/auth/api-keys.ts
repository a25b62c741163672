import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What a key may do: `client` drives transactions, `participant` registers, `metrics` reads
 * /metrics (a Prometheus server's key, which can change nothing), `admin` does everything.
 */
export const API_ROLES = ['client', 'participant', 'metrics', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/**
 * Keys are bearer tokens (RFC 6750 token68 characters) of 16 to 256 characters: long enough
 * not to be guessed, and free of `,` and `:` so the API_KEYS list parses without escaping.
 */
const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{16,256}$/;
/** Longest credential worth hashing; anything longer cannot be a configured key. */
const MAX_PRESENTED_LENGTH = 1024;

/** One configured key. Only its digest is kept, so the secret itself is never logged or compared. */
export interface ApiKey {
  /** `key#<position in API_KEYS>`: names the key in logs and rate-limit buckets without revealing it. */
  readonly id: string;
  readonly roles: ReadonlySet<ApiRole>;
  readonly digest: Buffer;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Parses `API_KEYS`: comma-separated `role[+role…]:key` entries, e.g.
 * `admin:k1,client:k2,client+participant:k3`. Throws one line naming the bad entry by its
 * position (never the key itself, which would then land in logs).
 */
export function parseApiKeys(spec: string): ApiKey[] {
  const entries = spec.split(',').map((entry) => entry.trim());
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    const where = `entry ${index + 1}`;
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new Error(`${where} must look like role[+role]:key`);
    const roleNames = entry.slice(0, colon).split('+');
    const key = entry.slice(colon + 1);
    const unknown = roleNames.filter((role) => !(API_ROLES as readonly string[]).includes(role));
    if (unknown.length > 0) throw new Error(`${where} has unknown role(s) ${unknown.join(', ')} (roles: ${API_ROLES.join(', ')})`);
    if (!KEY_PATTERN.test(key)) throw new Error(`${where}: a key must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -`);
    if (seen.has(key)) throw new Error(`${where} repeats a key given earlier`);
    seen.add(key);
    return { id: `key#${index + 1}`, roles: new Set(roleNames as ApiRole[]), digest: sha256(key) };
  });
}

/** The configured keys, matched in constant time. Empty: authentication is off. */
export class ApiKeyRing {
  constructor(private readonly keys: readonly ApiKey[]) {}

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  get size(): number {
    return this.keys.length;
  }

  /** `key#<n>` of the configured key with this digest (the owner of a participant name), or null. */
  idOfDigest(digest: Buffer): string | null {
    return this.keys.find((key) => key.digest.length === digest.length && timingSafeEqual(key.digest, digest))?.id ?? null;
  }

  /**
   * The key equal to `presented`, or null. Both sides are hashed to equal-length digests so
   * timingSafeEqual applies, and every key is compared (no early exit): the time taken says
   * neither which key matched nor how much of one did.
   */
  match(presented: string): ApiKey | null {
    if (presented.length === 0 || presented.length > MAX_PRESENTED_LENGTH) return null;
    const digest = sha256(presented);
    let found: ApiKey | null = null;
    for (const key of this.keys) {
      const equal = timingSafeEqual(digest, key.digest);
      if (equal && found === null) found = key;
    }
    return found;
  }
}

/**
 * What an Authorization header carries: a key (and by which scheme), nothing, or something we
 * cannot read. The scheme matters: a browser sends Basic credentials on its own (ambient
 * credentials), Bearer only when a script of ours put it there.
 */
export type PresentedCredential = { kind: 'none' } | { kind: 'malformed'; reason: string } | { kind: 'key'; key: string; scheme: 'bearer' | 'basic' };

/**
 * Reads `Authorization: Bearer <key>` or `Authorization: Basic base64(user:key)` (any user
 * name; the password is the key, so a browser's own login prompt works for the web console).
 */
export function readAuthorization(header: string | string[] | undefined): PresentedCredential {
  if (header === undefined) return { kind: 'none' };
  if (Array.isArray(header)) return { kind: 'malformed', reason: 'more than one Authorization header' };
  const value = header.trim();
  if (value === '') return { kind: 'none' };
  if (value.length > MAX_PRESENTED_LENGTH * 2) return { kind: 'malformed', reason: 'Authorization header is too long' };
  const space = value.indexOf(' ');
  const scheme = (space < 0 ? value : value.slice(0, space)).toLowerCase();
  const rest = space < 0 ? '' : value.slice(space + 1).trim();
  if (scheme === 'bearer') {
    return rest === '' ? { kind: 'malformed', reason: 'Bearer without a key' } : { kind: 'key', key: rest, scheme: 'bearer' };
  }
  if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(rest)) return { kind: 'malformed', reason: 'Basic credentials are not base64' };
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { kind: 'malformed', reason: 'Basic credentials must be user:key' };
    const key = decoded.slice(colon + 1);
    return key === '' ? { kind: 'malformed', reason: 'Basic credentials without a key' } : { kind: 'key', key, scheme: 'basic' };
  }
  return { kind: 'malformed', reason: 'Authorization must use the Bearer or Basic scheme' };
}

/** Whether a key may use a route that requires one of `required` (admin may use every route). */
export function keyMayUse(key: ApiKey, required: readonly ApiRole[]): boolean {
  return key.roles.has('admin') || required.some((role) => key.roles.has(role));
}

/** The header the web console sends its session token in, next to the browser's Basic login. */
export const CONSOLE_TOKEN_HEADER = 'x-dtx-console-token';

/** Fixed input of the console token's HMAC: changing it invalidates every token handed out. */
const CONSOLE_TOKEN_LABEL = 'nest-dtx console session v1';

/**
 * The console session token of a key: HMAC-SHA256 keyed by the key's digest over a fixed label,
 * base64url. Stateless, so every coordinator instance derives the same token for the same key,
 * and it is worthless without the key (it proves the page could read a same-origin answer,
 * which another site's page cannot).
 */
export function consoleTokenOf(key: ApiKey): string {
  return createHmac('sha256', key.digest).update(CONSOLE_TOKEN_LABEL, 'utf8').digest('base64url');
}

/** Whether `presented` is the console token of `key`, compared in constant time. */
export function isConsoleTokenOf(key: ApiKey, presented: string | string[] | undefined): boolean {
  if (typeof presented !== 'string' || presented.length > 128) return false;
  const expected = Buffer.from(consoleTokenOf(key), 'utf8');
  const given = Buffer.from(presented, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
