/**
 * The rows an AT prepare reports it locked, as each transport reads them from the answer: the
 * `x-tx-at-locks` header over HTTP, the reply's `locks` member on the message transports. They
 * are for the admin view only, so a malformed value is dropped and the answer stays ok.
 */
import { describe, expect, it } from 'vitest';
import { encodeBranchLocks, type BranchLocks, type MicroserviceReply } from '@nest-dtx/protocol';
import { okOutcome } from './http-participant.transport.js';
import { outcomeOfReply } from './microservice-reply.js';

const locks: BranchLocks = { count: 3, rows: [{ table: 'public.accounts', key: '["alice"]' }, { table: 'public."Zoë"', key: '[1, "ü"]' }] };

describe('HTTP: the x-tx-at-locks header of a 2xx answer', () => {
  it('puts the locks beside the result', () => {
    expect(okOutcome({ debited: 5 }, encodeBranchLocks(locks))).toEqual({ kind: 'ok', result: { debited: 5 }, locks });
  });

  it('is no field of the outcome without the header', () => {
    const outcome = okOutcome(null, undefined);
    expect(outcome).toEqual({ kind: 'ok', result: null });
    expect(outcome).not.toHaveProperty('locks');
  });

  it('drops a malformed or repeated header and keeps the answer ok', () => {
    for (const header of ['not json', '{"count":-1,"rows":[]}', '{"count":1}', '{"count":1,"rows":[{"table":1,"key":"k"}]}', '[]', 'null', '']) {
      expect(okOutcome({ ok: true }, header)).toEqual({ kind: 'ok', result: { ok: true } });
    }
    expect(okOutcome({ ok: true }, [encodeBranchLocks(locks), encodeBranchLocks(locks)])).toEqual({ kind: 'ok', result: { ok: true } });
  });
});

describe("message transports: the reply's locks member", () => {
  it('puts the locks beside the result of an ok reply', () => {
    expect(outcomeOfReply({ outcome: 'ok', result: { credited: 5 }, locks })).toEqual({ kind: 'ok', result: { credited: 5 }, locks });
  });

  it('maps a reply without locks, or a failed one, as before', () => {
    expect(outcomeOfReply({ outcome: 'ok', result: null })).toEqual({ kind: 'ok', result: null });
    expect(outcomeOfReply({ outcome: 'failed', message: 'insufficient funds' })).toEqual({ kind: 'failed', error: { message: 'insufficient funds' } });
  });

  it('drops a malformed locks member and keeps the reply ok', () => {
    for (const bad of ['{"count":', { count: 'two', rows: [] }, { count: 1, rows: 'all' }, 42, null]) {
      const reply = { outcome: 'ok', result: {}, locks: bad } as unknown as MicroserviceReply;
      expect(outcomeOfReply(reply)).toEqual({ kind: 'ok', result: {} });
    }
  });
});
