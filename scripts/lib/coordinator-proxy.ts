/**
 * An HTTP proxy between a service and the coordinator (the outbox demo's): passes every request
 * through, except the ones a hold names. A hold on `commit` stops the service's
 * `POST /v1/transactions/{gid}/commit` (the submit of a message) for a gid with the given
 * prefix before it reaches the coordinator; a hold on `begin` lets `POST /v1/transactions` for
 * such a gid through, and stops its answer. Either way the hold's action runs (the demo kills
 * the service there) and the request is then cut. Each hold acts once.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type HeldRequest = 'begin' | 'commit';

interface Hold {
  request: HeldRequest;
  gidPrefix: string;
  action: (gid: string) => Promise<void>;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The answer's headers to pass on: the hop-by-hop ones stay behind, and the body is sent whole. */
function endToEnd(headers: IncomingHttpHeaders, length: number): IncomingHttpHeaders {
  const { connection: _connection, 'keep-alive': _keepAlive, 'transfer-encoding': _encoding, 'content-length': _length, ...rest } = headers;
  return { ...rest, 'content-length': String(length) };
}

const COMMIT_PATH = /^\/v1\/transactions\/([^/?]+)\/commit(?:\?.*)?$/;

export class CoordinatorProxy {
  private readonly holds: Hold[] = [];
  private server: Server | null = null;
  url = '';

  constructor(private readonly coordinatorPort: number) {}

  /** Arms a hold (see the module's comment); resolves nothing: the action says when it acted. */
  hold(request: HeldRequest, gidPrefix: string, action: (gid: string) => Promise<void>): void {
    this.holds.push({ request, gidPrefix, action });
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void (async () => {
          const body = Buffer.concat(chunks);
          const path = req.url ?? '/';
          const target = req.method === 'POST' ? this.gidOf(path, body) : null;
          const hold = target ? this.take(target.request, target.gid) : null;
          try {
            if (target && hold?.request === 'commit') {
              await hold.action(target.gid);
              return res.destroy();
            }
            const answer = await this.forward(req.method ?? 'GET', path, req.headers, body);
            if (target && hold) {
              await hold.action(target.gid);
              return res.destroy();
            }
            if (!res.destroyed) res.writeHead(answer.status, endToEnd(answer.headers, answer.body.length)).end(answer.body);
          } catch {
            if (!res.destroyed) res.writeHead(502, { 'content-type': 'application/json' }).end('{"statusCode":502,"error":"COORDINATOR_UNREACHABLE"}');
          }
        })();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The begin or commit this request is, and its gid. */
  private gidOf(path: string, body: Buffer): { request: HeldRequest; gid: string } | null {
    const commit = COMMIT_PATH.exec(path);
    if (commit) return { request: 'commit', gid: decodeURIComponent(commit[1]) };
    if (path.split('?')[0] !== '/v1/transactions') return null;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { gid?: unknown };
      return typeof parsed.gid === 'string' ? { request: 'begin', gid: parsed.gid } : null;
    } catch {
      return null;
    }
  }

  private take(request: HeldRequest, gid: string): Hold | null {
    const at = this.holds.findIndex((h) => h.request === request && gid.startsWith(h.gidPrefix));
    return at < 0 ? null : this.holds.splice(at, 1)[0];
  }

  private forward(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const upstream = httpRequest(
        { host: '127.0.0.1', port: this.coordinatorPort, path, method, headers: { ...headers, host: `127.0.0.1:${this.coordinatorPort}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });
  }
}
