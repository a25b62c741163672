import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * PROTOCOL.md 5.5 as a participant in any language would write it from the page, without the
 * SDK: the three headers, a timestamp within 5 minutes, and one of the space-separated `v1,`
 * signatures equal to base64(HMAC-SHA256(secret bytes, "{id}.{timestamp}.{raw body}")). Null when
 * it verifies, else why not. The tests' hand-written participants check every call with it.
 */
export function signatureProblem(secret: string, headers: IncomingHttpHeaders, rawBody: Buffer): string | null {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return 'missing signature headers';
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return 'timestamp outside 5 minutes';
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(rawBody).digest();
  const matches = signatures.split(' ').some((entry) => {
    const [version, encoded] = entry.split(',');
    const candidate = Buffer.from(encoded ?? '', 'base64');
    return version === 'v1' && candidate.length === expected.length && timingSafeEqual(candidate, expected);
  });
  return matches ? null : 'no signature matches';
}
