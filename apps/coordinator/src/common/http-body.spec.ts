import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@nest-dtx/protocol';
import { ApiError } from './api-error.js';
import { fastifyErrorBody, parseJsonBody, unsupportedBodyReason } from './http-body.js';

const JSON_TYPE = 'application/json';
const codeOf = (run: () => unknown): unknown => {
  try {
    run();
  } catch (error) {
    return error instanceof ApiError ? [error.getStatus(), (error.getResponse() as { error: string }).error] : error;
  }
  return 'no error';
};

describe('parseJsonBody', () => {
  it('parses objects and arrays, and takes an empty body for {}', () => {
    expect(parseJsonBody('{"mode":"tcc"}', JSON_TYPE, undefined)).toEqual({ mode: 'tcc' });
    expect(parseJsonBody(' [1]', 'application/json; charset=UTF-8', 'identity')).toEqual([1]);
    expect(parseJsonBody('', JSON_TYPE, undefined)).toEqual({});
    expect(parseJsonBody(' \n', JSON_TYPE, undefined)).toEqual({});
  });

  it('answers 400 INVALID_JSON for broken JSON and for a top level that is no object or array', () => {
    for (const text of ['{', '{"mode":', 'null', '"tcc"', '1', '{"a":1,}', '\u0000']) {
      expect(codeOf(() => parseJsonBody(text, JSON_TYPE, undefined))).toEqual([400, ErrorCode.INVALID_JSON]);
    }
  });

  it('answers 415 for another charset or a compressed body', () => {
    expect(codeOf(() => parseJsonBody('{}', 'application/json; charset=utf-16', undefined))).toEqual([415, ErrorCode.UNSUPPORTED_MEDIA_TYPE]);
    expect(codeOf(() => parseJsonBody('{}', 'application/json; charset=latin1', undefined))).toEqual([415, ErrorCode.UNSUPPORTED_MEDIA_TYPE]);
    expect(codeOf(() => parseJsonBody('{}', JSON_TYPE, 'gzip'))).toEqual([415, ErrorCode.UNSUPPORTED_MEDIA_TYPE]);
  });
});

describe('fastifyErrorBody', () => {
  it("maps Fastify's body and URL errors to the API's codes, and leaves other errors alone", () => {
    expect(fastifyErrorBody({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).toMatchObject({ statusCode: 413, error: ErrorCode.PAYLOAD_TOO_LARGE });
    expect(fastifyErrorBody({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 })).toMatchObject({ statusCode: 415, error: ErrorCode.UNSUPPORTED_MEDIA_TYPE });
    expect(fastifyErrorBody({ code: 'FST_ERR_BAD_URL', statusCode: 400 })).toMatchObject({ statusCode: 400, error: ErrorCode.VALIDATION_FAILED });
    expect(fastifyErrorBody({ code: 'FST_ERR_SOMETHING_NEW', statusCode: 400 })).toMatchObject({ statusCode: 400, error: ErrorCode.VALIDATION_FAILED });
    expect(fastifyErrorBody({ code: 'FST_ERR_HANDLER_TIMEOUT', statusCode: 503 })).toBeNull();
    expect(fastifyErrorBody(new Error('boom'))).toBeNull();
    expect(fastifyErrorBody({ code: '23505' })).toBeNull();
  });
});

describe('unsupportedBodyReason', () => {
  it('refuses a body that is not JSON, whatever its type, before reading it', () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', undefined]) {
      expect(unsupportedBodyReason({ 'content-length': '2', ...(type ? { 'content-type': type } : {}) })).toMatch(/must be application\/json/);
      expect(unsupportedBodyReason({ 'transfer-encoding': 'chunked', ...(type ? { 'content-type': type } : {}) })).not.toBeNull();
    }
  });

  it('takes JSON with any parameters, and no body at all whatever the type', () => {
    expect(unsupportedBodyReason({ 'content-length': '2', 'content-type': 'Application/JSON; charset=utf-8' })).toBeNull();
    expect(unsupportedBodyReason({ 'content-length': '0', 'content-type': 'text/plain' })).toBeNull();
    expect(unsupportedBodyReason({})).toBeNull();
  });
});
