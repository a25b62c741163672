/**
 * The jepsen suite's recorder (scripts/jepsen.ts), one process in front of each bank, on the
 * bank's host (its network namespace in the partition runs): it forwards every call of the
 * coordinators to the bank and writes one JSON line per call to RECORD_FILE, with the time it
 * arrived on this machine's real clock (the recorder is never under faketime), its sender
 * (x-tx-coordinator: `instance/leaseVersion`), and the bank's answer. A share of the calls
 * (FLAKY_RATE, drawn from SEED) is answered 503 without reaching the bank, so that transactions
 * meet transient failures (sagas retry their steps until their deadline) in every run.
 *
 * `peerClosedMs`: how long after the call arrived its sender closed the connection (FIN), or
 * null. A call whose connection was already closed when it arrived (within a few ms) is one the
 * sender had given up on before it arrived: the network held it (TCP retransmitting through a
 * partition) and delivered it after the heal.
 *
 * Environment: LISTEN_HOST, LISTEN_PORT, TARGET_HOST, TARGET_PORT, RECORD_FILE, FLAKY_RATE, SEED.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { prng } from './lib/run-options.js';
import type { RecordedCall } from './lib/jepsen/recorded-call.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const listenHost = env('LISTEN_HOST');
const listenPort = Number(env('LISTEN_PORT'));
const targetHost = env('TARGET_HOST');
const targetPort = Number(env('TARGET_PORT'));
const file = env('RECORD_FILE');
const flakyRate = Number(env('FLAKY_RATE', '0'));
const random = prng(Number(env('SEED', '1')));
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
writeFileSync(file, '', { flag: 'a' });

/** When each connection's sender closed it (its FIN arrived), by socket. */
const closedAt = new WeakMap<Socket, number>();

function record(call: RecordedCall): void {
  appendFileSync(file, `${JSON.stringify(call)}\n`);
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const at = Date.now();
  const socket = req.socket;
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let call: { gid?: unknown; branchId?: unknown; mode?: unknown; phase?: unknown } = {};
    try {
      call = JSON.parse(body.toString('utf8')) as typeof call;
    } catch {
      // Not a phase call (the bank's own API is not behind the recorder): forwarded as it is.
    }
    const sender = req.headers['x-tx-coordinator'];
    const base = {
      at,
      gid: typeof call.gid === 'string' ? call.gid : '',
      branchId: typeof call.branchId === 'string' ? call.branchId : '',
      mode: typeof call.mode === 'string' ? call.mode : '',
      phase: typeof call.phase === 'string' ? call.phase : '',
      sender: typeof sender === 'string' ? sender : '',
    };
    const done = (status: number, injected: boolean): void => {
      // The FIN of a connection its sender had closed comes with (or right after) the call.
      setTimeout(() => {
        const closed = closedAt.get(socket);
        record({ ...base, status, injected, peerClosedMs: closed === undefined ? null : closed - at });
      }, 20);
    };
    if (base.gid !== '' && flakyRate > 0 && random() < flakyRate) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"injected":true}');
      done(503, true);
      return;
    }
    const upstream = httpRequest(
      { host: targetHost, port: targetPort, path: req.url, method: req.method, headers: { ...req.headers, host: `${targetHost}:${targetPort}` }, agent },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          const status = answer.statusCode ?? 502;
          if (!res.destroyed) res.writeHead(status, { 'content-type': answer.headers['content-type'] ?? 'application/json' }).end(Buffer.concat(parts));
          if (base.gid !== '') done(status, false);
        });
        answer.on('error', () => undefined);
      },
    );
    upstream.on('error', () => {
      if (!res.destroyed) res.writeHead(502).end('{"error":"bank unreachable"}');
      if (base.gid !== '') done(502, false);
    });
    upstream.end(body);
  });
});
server.on('connection', (socket: Socket) => {
  socket.on('end', () => closedAt.set(socket, Date.now()));
});
// Answers are written even to a connection whose sender is gone; nothing to do about their errors.
server.on('clientError', (_error, socket: Socket) => socket.destroy());
server.keepAliveTimeout = 30_000;
server.listen(listenPort, listenHost, () => console.log(`recorder on ${listenHost}:${listenPort} -> ${targetHost}:${targetPort}`));
const stop = (): void => {
  server.close();
  setTimeout(() => process.exit(0), 100);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
