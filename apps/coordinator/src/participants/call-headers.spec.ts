import { describe, expect, it } from 'vitest';
import { checkCallHeaders, MAX_CALL_HEADERS } from './call-headers.js';

describe('registered call headers', () => {
  it('accepts gateway credentials and returns the names lower-case', () => {
    expect(checkCallHeaders({ 'X-Gateway-Key': 'k 1', Authorization: 'Bearer t' }, 'http')).toEqual({
      ok: true,
      headers: { 'x-gateway-key': 'k 1', authorization: 'Bearer t' },
    });
    expect(checkCallHeaders(undefined, 'tcp')).toEqual({ ok: true, headers: {} });
    expect(checkCallHeaders({}, 'redis')).toEqual({ ok: true, headers: {} });
  });

  it.each([
    [{ Connection: 'close' }, 'headers.Connection'],
    [{ 'transfer-encoding': 'chunked' }, 'headers.transfer-encoding'],
    [{ host: 'elsewhere' }, 'headers.host'],
    [{ 'content-length': '1' }, 'headers.content-length'],
    [{ 'webhook-signature': 'v1,x' }, 'headers.webhook-signature'],
    [{ traceparent: '00-x' }, 'headers.traceparent'],
    [{ 'X-Tx-Coordinator': 'me' }, 'headers.X-Tx-Coordinator'],
    [{ 'x-a': 'one\r\nInjected: two' }, 'headers.x-a'],
    [{ 'x-a': 'ü' }, 'headers.x-a'],
    [{ 'x-a': 'x'.repeat(4097) }, 'headers.x-a'],
    [{ 'x-a': 5 }, 'headers.x-a'],
    [{ 'x a': 'v' }, 'headers.x a'],
    [{ '': 'v' }, 'headers.'],
    [{ 'x-a': 'v', 'X-A': 'w' }, 'headers.X-A'],
  ])('refuses %j, naming %s', (headers, field) => {
    expect(checkCallHeaders(headers, 'http')).toMatchObject({ ok: false, field });
  });

  it('refuses too many headers, and headers on a transport that is not HTTP', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_CALL_HEADERS + 1 }, (_, i) => [`x-h${i}`, 'v']));
    expect(checkCallHeaders(many, 'http')).toMatchObject({ ok: false, field: 'headers' });
    expect(checkCallHeaders({ 'x-a': 'b' }, 'tcp')).toMatchObject({ ok: false, field: 'headers' });
  });
});
