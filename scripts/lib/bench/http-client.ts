/**
 * The bench's HTTP client: `node:http` on one keep-alive Agent, no fetch (fetch costs several
 * times more CPU per request in the client, which on a small machine would make the client the
 * bottleneck). Every request the bench makes, to the coordinator and to the participants, goes
 * through here, so the coordinator and the direct baseline pay the same client cost.
 */
import http from 'node:http';

export interface HttpAnswer {
  status: number;
  /** The parsed JSON body, or null when empty. */
  body: unknown;
  headers: http.IncomingHttpHeaders;
}

let agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** Sizes the shared agent: at least `maxSockets` sockets per host (one per concurrent request). */
export function configureAgent(maxSockets: number): void {
  agent.destroy();
  agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
}

export function closeAgent(): void {
  agent.destroy();
}

const TIMEOUT_MS = 120_000;

function once(method: 'GET' | 'POST', url: string, payload: string | null, headers: Record<string, string>): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method,
        agent,
        headers: payload === null ? headers : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
        timeout: TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: response.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : null, headers: response.headers });
          } catch {
            resolve({ status: response.statusCode ?? 0, body: text, headers: response.headers });
          }
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${method} ${url}: no answer in ${TIMEOUT_MS} ms`)));
    request.on('error', reject);
    request.end(payload ?? undefined);
  });
}

/** A kept-alive socket the server closed just as it was reused: safe to send again (every bench request is idempotent). */
const isStaleSocket = (error: unknown): boolean =>
  error instanceof Error && ['ECONNRESET', 'EPIPE'].includes((error as NodeJS.ErrnoException).code ?? '');

async function send(method: 'GET' | 'POST', url: string, payload: string | null, headers: Record<string, string>): Promise<HttpAnswer> {
  try {
    return await once(method, url, payload, headers);
  } catch (error) {
    if (!isStaleSocket(error)) throw error;
    return once(method, url, payload, headers);
  }
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return send('POST', url, JSON.stringify(body), headers);
}

/** POST of a body already serialised: the direct baseline signs the very bytes it sends. */
export function postSerialised(url: string, payload: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return send('POST', url, payload, headers);
}

export function getJson(url: string): Promise<HttpAnswer> {
  return send('GET', url, null, {});
}

/** GET that must answer 2xx; returns the body. */
export async function getOk<T>(url: string): Promise<T> {
  const answer = await getJson(url);
  if (answer.status < 200 || answer.status >= 300) throw new Error(`GET ${url}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as T;
}
