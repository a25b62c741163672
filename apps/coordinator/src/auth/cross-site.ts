import type { IncomingHttpHeaders } from 'node:http';
import { isSafeMethod } from './authenticate.js';

/** The host:port a browser's Origin or a Host header names, lower-case, without a default port. */
function normalisedHost(host: string, scheme: string): string {
  const lower = host.toLowerCase();
  if (scheme === 'http:' && lower.endsWith(':80')) return lower.slice(0, -3);
  if (scheme === 'https:' && lower.endsWith(':443')) return lower.slice(0, -4);
  return lower;
}

/**
 * Why a request must be refused as sent by another site's page, or null. Applies to methods
 * that change state (GET, HEAD and OPTIONS change nothing), and only to browsers: they send
 * Sec-Fetch-Site and Origin, curl, the SDK and servers send neither.
 *
 * - `Sec-Fetch-Site: cross-site` or `same-site` (a sibling subdomain is another site's page
 *   too); `same-origin` and `none` (typed in the address bar) pass.
 * - An `Origin` other than the coordinator's own (its Host header). Either scheme is taken for
 *   the same host and port, since a proxy that ends TLS in front of the coordinator makes the
 *   page's https origin reach it as http; another scheme on the same host:port is the same
 *   server. `Origin: null` (sandboxed frames, some redirects) is never our own.
 */
export function crossSiteReason(method: string, headers: IncomingHttpHeaders): string | null {
  if (isSafeMethod(method)) return null;
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return `a ${method} from a page of another site (Sec-Fetch-Site: ${site}) is refused`;
  const origin = headers.origin;
  if (origin === undefined) return null;
  const host = headers.host;
  let parsed: URL | null = null;
  try {
    parsed = new URL(origin);
  } catch {
    parsed = null;
  }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || host === undefined) {
    return `a ${method} from origin ${origin.slice(0, 100)} is refused`;
  }
  if (normalisedHost(parsed.host, parsed.protocol) !== normalisedHost(host, parsed.protocol)) {
    return `a ${method} from origin ${parsed.origin} is refused: it is not this coordinator's own (${host.slice(0, 100)})`;
  }
  return null;
}
