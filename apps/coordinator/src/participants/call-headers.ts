/**
 * Headers a participant registers for the coordinator to send on every HTTP call to it (an API
 * gateway's credentials, or a header a guard of the host app checks). They must not be able to
 * bend the call itself: no hop-by-hop or framing headers, nothing the protocol sends itself.
 */
const FORBIDDEN = new Set([
  // Hop-by-hop (RFC 9110 7.6.1) and framing: they describe the connection, not the call.
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'content-length', 'content-type', 'content-encoding', 'expect',
  // The protocol's own: the signature (PROTOCOL.md 5.5), trace context, the call's identity.
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'traceparent', 'tracestate',
]);
/** RFC 9110 token characters. */
const NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** Visible ASCII, spaces and tabs: no line breaks (header injection), no bytes Node would refuse. */
const VALUE_PATTERN = /^[\t\x20-\x7e]{0,4096}$/;
export const MAX_CALL_HEADERS = 16;

export type CallHeadersCheck = { ok: true; headers: Record<string, string> } | { ok: false; field: string; message: string };

/** Validates registered call headers; names come back lower-case. */
export function checkCallHeaders(headers: Record<string, unknown> | undefined | null, transport: string): CallHeadersCheck {
  // null passes @IsOptional as absent does.
  if (headers === undefined || headers === null) return { ok: true, headers: {} };
  const entries = Object.entries(headers);
  if (entries.length === 0) return { ok: true, headers: {} };
  if (transport !== 'http') return { ok: false, field: 'headers', message: 'headers are sent on HTTP calls only; this participant uses ' + transport };
  if (entries.length > MAX_CALL_HEADERS) return { ok: false, field: 'headers', message: `at most ${MAX_CALL_HEADERS} headers` };
  const checked: Record<string, string> = {};
  for (const [name, value] of entries) {
    const field = `headers.${name.slice(0, 64)}`;
    if (!NAME_PATTERN.test(name)) return { ok: false, field, message: 'a header name is 1 to 64 token characters' };
    const lower = name.toLowerCase();
    if (FORBIDDEN.has(lower) || lower.startsWith('x-tx-')) {
      return { ok: false, field, message: `${lower} is a hop-by-hop, framing or protocol header and cannot be registered` };
    }
    if (lower in checked) return { ok: false, field, message: `${lower} is given twice` };
    if (typeof value !== 'string' || !VALUE_PATTERN.test(value)) {
      return { ok: false, field, message: 'a header value is a string of at most 4096 visible ASCII characters, spaces or tabs' };
    }
    checked[lower] = value;
  }
  return { ok: true, headers: checked };
}
