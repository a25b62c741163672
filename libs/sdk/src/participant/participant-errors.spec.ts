import { describe, expect, it } from 'vitest';
import { isJsonContentType, participantRoutePattern, requestErrorBody } from './participant-errors.js';

describe('requestErrorBody', () => {
  it('maps Express body-parser refusals to stable codes with fixed messages', () => {
    expect(requestErrorBody({ status: 400, type: 'entity.parse.failed', message: 'Unexpected token } in "{"amount":' })).toEqual({
      statusCode: 400,
      error: 'INVALID_JSON',
      message: 'request body is not valid JSON',
    });
    expect(requestErrorBody({ status: 413, type: 'entity.too.large' })).toMatchObject({ statusCode: 413, error: 'PAYLOAD_TOO_LARGE' });
    expect(requestErrorBody({ status: 415, type: 'charset.unsupported' })).toMatchObject({ statusCode: 415, error: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(requestErrorBody({ status: 415, type: 'encoding.unsupported' })).toMatchObject({ statusCode: 415, error: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(requestErrorBody({ status: 400, type: 'request.aborted' })).toMatchObject({ statusCode: 400, error: 'BAD_REQUEST' });
    expect(requestErrorBody(Object.assign(new URIError('URI malformed'), { status: 400 }))).toMatchObject({ statusCode: 400, error: 'BAD_REQUEST' });
  });

  it('leaves server faults and what is no HTTP error to Nest', () => {
    expect(requestErrorBody({ status: 500, type: 'stream.encoding.set' })).toBeNull();
    expect(requestErrorBody(new Error('boom'))).toBeNull();
    expect(requestErrorBody('text')).toBeNull();
  });
});

describe('participantRoutePattern', () => {
  it('matches {path}/{action}/{phase}, under any global prefix, and nothing else', () => {
    const route = participantRoutePattern('tx');
    for (const path of ['/tx/credit/execute', '/tx/credit/try/', '/api/tx/a/b', '/api/v1/tx/debit/confirm']) expect(route.test(path)).toBe(true);
    for (const path of ['/tx/credit', '/tx/a/b/c', '/txx/a/b', '/accounts/alice', '/tx']) expect(route.test(path)).toBe(false);
    expect(participantRoutePattern('/dtx/v2/').test('/dtx/v2/a/b')).toBe(true);
    expect(participantRoutePattern('a.b').test('/aXb/c/d')).toBe(false);
  });
});

describe('isJsonContentType', () => {
  it('accepts application/json in UTF-8 only', () => {
    for (const type of ['application/json', 'Application/JSON', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"']) expect(isJsonContentType(type)).toBe(true);
    for (const type of [undefined, '', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16le', 'application/jsonx']) expect(isJsonContentType(type)).toBe(false);
  });
});
