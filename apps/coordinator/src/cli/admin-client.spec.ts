import { describe, expect, it } from 'vitest';
import { AdminClient } from './admin-client.js';
import { CliError, ExitCode } from './exit-codes.js';

interface Seen {
  url: string;
  init: RequestInit;
}

/** A client whose fetch answers `status` with `body`, recording what it was asked. */
function clientAnswering(status: number, body: string, apiKey?: string): { client: AdminClient; seen: Seen[] } {
  const seen: Seen[] = [];
  const fake: typeof fetch = (input, init) => {
    seen.push({ url: input instanceof Request ? input.url : input.toString(), init: init ?? {} });
    return Promise.resolve(new Response(body, { status }));
  };
  return { client: new AdminClient({ url: 'http://dtx:7070', apiKey, fetch: fake }), seen };
}

async function failure(promise: Promise<unknown>): Promise<CliError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CliError);
  return error as CliError;
}

describe('AdminClient', () => {
  it('sends the filters as the query, the key as a bearer token, and keeps the answer text for --json', async () => {
    const { client, seen } = clientAnswering(200, '{"items":[],"nextCursor":null}', 'the-key');
    const answer = await client.listTransactions({ status: 'active', attention: true, limit: 5 });
    expect(seen[0].url).toBe('http://dtx:7070/admin/transactions?status=active&attention=true&limit=5');
    expect(new Headers(seen[0].init.headers).get('authorization')).toBe('Bearer the-key');
    expect(answer).toEqual({ body: { items: [], nextCursor: null }, text: '{"items":[],"nextCursor":null}' });
  });

  it('asks GET /admin/locks with the filters given', async () => {
    const { client, seen } = clientAnswering(200, '{"items":[],"nextCursor":null}');
    await client.heldLocks({ participant: 'bank-a', limit: 2, cursor: 'C' });
    await client.heldLocks({});
    expect(seen.map((s) => s.url)).toEqual(['http://dtx:7070/admin/locks?participant=bank-a&limit=2&cursor=C', 'http://dtx:7070/admin/locks']);
  });

  it('encodes path parameters and posts JSON bodies', async () => {
    const { client, seen } = clientAnswering(200, '{}');
    await client.transaction('a/b c');
    await client.rotateSecret('bank', 0);
    expect(seen[0].url).toBe('http://dtx:7070/admin/transactions/a%2Fb%20c');
    expect(new Headers(seen[0].init.headers).has('authorization')).toBe(false);
    expect(seen[1]).toMatchObject({ url: 'http://dtx:7070/admin/participants/bank/rotate-secret', init: { method: 'POST', body: '{"overlapSeconds":0}' } });
  });

  it('turns error answers into their code, message and exit code', async () => {
    const cases: [number, string, string, number][] = [
      [404, '{"statusCode":404,"error":"TX_NOT_FOUND","message":"transaction x not found"}', 'TX_NOT_FOUND', ExitCode.NOT_FOUND],
      [401, '{"statusCode":401,"error":"UNAUTHENTICATED","message":"missing API key"}', 'UNAUTHENTICATED', ExitCode.CREDENTIALS],
      [403, '{"statusCode":403,"error":"FORBIDDEN","message":"needs admin"}', 'FORBIDDEN', ExitCode.CREDENTIALS],
      [409, '{"statusCode":409,"error":"TX_ALREADY_DECIDED","message":"committed"}', 'TX_ALREADY_DECIDED', ExitCode.REFUSED],
      [400, '{"statusCode":400,"error":"VALIDATION_FAILED","message":"limit must not be greater than 200"}', 'VALIDATION_FAILED', ExitCode.REFUSED],
      [503, '{"statusCode":503,"error":"STORE_UNAVAILABLE","message":"try again"}', 'STORE_UNAVAILABLE', ExitCode.UNAVAILABLE],
      [502, '<html>Bad Gateway</html>', 'HTTP_502', ExitCode.UNAVAILABLE],
    ];
    for (const [status, body, code, exitCode] of cases) {
      const error = await failure(clientAnswering(status, body, 'k').client.stats());
      expect({ code: error.code, exitCode: error.exitCode }).toEqual({ code, exitCode });
    }
  });

  it('says when a refused request carried no key', async () => {
    const error = await failure(clientAnswering(401, '{"error":"UNAUTHENTICATED","message":"missing API key"}').client.stats());
    expect(error.message).toBe('missing API key (DTX_API_KEY is unset)');
  });

  it('reports an unreachable coordinator and a timeout as UNREACHABLE (exit 6)', async () => {
    const refused: typeof fetch = () => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') }));
    const unreachable = await failure(new AdminClient({ url: 'http://127.0.0.1:9', fetch: refused }).stats());
    expect(unreachable).toMatchObject({ code: 'UNREACHABLE', exitCode: ExitCode.UNAVAILABLE, message: 'GET http://127.0.0.1:9/admin/stats: connect ECONNREFUSED 127.0.0.1:9' });
    const hanging: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('timed out', 'TimeoutError'))));
    const timedOut = await failure(new AdminClient({ url: 'http://dtx', fetch: hanging, timeoutMs: 20 }).stats());
    expect(timedOut.message).toBe('GET http://dtx/admin/stats: no answer within 20 ms');
  });
});
