/**
 * A "plain" bench participant: a bare `node:http` server on 127.0.0.1:$PORT that answers every
 * `POST /tx/{action}/{phase}` with 200 and `{}` (the body is read and discarded), so the
 * coordinator's own cost is what a benchmark against it measures. Started by the benchmarks as a
 * child process; it does not verify signatures and keeps no state. By default it answers at once.
 *
 * For the overload bench (scripts/overload-bench.ts) it has knobs, all off by default:
 *
 *   LATENCY_MS      answer after this many ms: `50`, or per phase / per action and phase,
 *                   `execute=50,confirm=5,work/try=80` (the most specific wins; `*=n` the rest)
 *   UPSTREAM        http://host:port of a real participant (the demo account service): the calls
 *                   are forwarded there, bytes and headers as they came (signatures still verify),
 *                   after the latency, and its answer is passed back; the knobs then apply to it
 *   CONTROL_PORT    a second server, on 127.0.0.1:$CONTROL_PORT, that stays up when the
 *                   participant is "dead":
 *     POST /control {"latencyMs": 50 | {"execute": 50, ...}, "down": true|false, "downMode": m}
 *                   changes the latency, or takes the participant down or brings it back. m:
 *                   `closed` (default): the listening socket is closed and every connection
 *                   dropped: connections are refused, nothing is counted;
 *                   `reset`: still listening, but every connection is destroyed as soon as it is
 *                   accepted (the caller sees ECONNRESET): each one is counted, so the rate the
 *                   coordinator tries a dead participant at can be read;
 *                   `503`: every call is answered 503 at once (a transient failure), and counted;
 *                   `hang`: calls are read and never answered (until the participant comes back).
 *     GET /stats    {calls, answered, answered503, resets, inFlight, maxInFlight, latency, down,
 *                   perSecond: [[epoch second, calls, resets, answered503], ...]} since the last
 *     POST /stats/reset (calls: every /tx request received; maxInFlight: the most calls it held
 *                   at once, answered or not yet).
 */
import http from 'node:http';
import type { Socket } from 'node:net';

type DownMode = 'closed' | 'reset' | '503' | 'hang';
const DOWN_MODES: readonly DownMode[] = ['closed', 'reset', '503', 'hang'];

const port = Number(process.env.PORT ?? 0);
const controlPort = process.env.CONTROL_PORT ? Number(process.env.CONTROL_PORT) : null;
const upstream = process.env.UPSTREAM ? new URL(process.env.UPSTREAM) : null;
/** Counters and knobs only with a control server: the plain bench pays nothing for them. */
const tracking = controlPort !== null || upstream !== null || process.env.LATENCY_MS !== undefined;
const ROUTE = /^\/tx\/([^/]+)\/([^/]+)$/;

/** Latency: a fixed number, or keyed by `phase`, `action/phase`, and `*`. */
type Latency = number | Record<string, number>;

function parseLatency(spec: string | undefined): Latency {
  if (!spec || spec.trim() === '') return 0;
  if (/^\d+(\.\d+)?$/.test(spec.trim())) return Number(spec);
  const table: Record<string, number> = {};
  for (const part of spec.split(',')) {
    const [key, value] = part.split('=').map((s) => s.trim());
    if (!key || value === undefined || !Number.isFinite(Number(value))) throw new Error(`LATENCY_MS: cannot read "${part}"`);
    table[key] = Number(value);
  }
  return table;
}

const state = {
  latency: parseLatency(process.env.LATENCY_MS),
  down: false,
  downMode: 'closed' as DownMode,
};

const latencyFor = (action: string, phase: string): number =>
  typeof state.latency === 'number' ? state.latency : (state.latency[`${action}/${phase}`] ?? state.latency[phase] ?? state.latency['*'] ?? 0);

// Counters since the last reset.
let stats = fresh();
function fresh() {
  return { calls: 0, answered: 0, answered503: 0, resets: 0, inFlight: 0, maxInFlight: 0, perSecond: new Map<number, [number, number, number]>() };
}
function tick(index: 0 | 1 | 2): void {
  const second = Math.floor(Date.now() / 1000);
  let row = stats.perSecond.get(second);
  if (!row) {
    row = [0, 0, 0];
    stats.perSecond.set(second, row);
    // Keep ten minutes.
    for (const key of stats.perSecond.keys()) {
      if (key < second - 600) stats.perSecond.delete(key);
      else break;
    }
  }
  row[index]++;
}

/** Calls held unanswered by `hang`, answered (dropped) when the participant comes back. */
const hanging = new Set<http.ServerResponse>();

const upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function answer(response: http.ServerResponse, status: number, body: string, contentType = 'application/json'): void {
  if (response.destroyed) return;
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
  if (status === 503) stats.answered503++;
  else if (status < 300) stats.answered++;
}

function forward(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): void {
  const headers = { ...request.headers, host: upstream!.host, 'content-length': String(body.length) };
  const out = http.request(
    { host: upstream!.hostname, port: upstream!.port, path: request.url, method: request.method, headers, agent: upstreamAgent },
    (reply) => {
      const chunks: Buffer[] = [];
      reply.on('data', (c: Buffer) => chunks.push(c));
      reply.on('end', () => answer(response, reply.statusCode ?? 502, Buffer.concat(chunks).toString('utf8'), String(reply.headers['content-type'] ?? 'application/json')));
      reply.on('error', () => response.destroy());
    },
  );
  out.on('error', () => answer(response, 502, '{"error":"UPSTREAM"}'));
  out.end(body);
}

function serve(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): void {
  const route = request.method === 'POST' ? ROUTE.exec(request.url ?? '') : null;
  if (route && !tracking) {
    // The plain bench: nothing counted, no knob, answered at once.
    answer(response, 200, '{}');
  } else if (route) {
    stats.calls++;
    tick(0);
    stats.inFlight++;
    if (stats.inFlight > stats.maxInFlight) stats.maxInFlight = stats.inFlight;
    let counted = true;
    const done = () => {
      if (counted) stats.inFlight--;
      counted = false;
    };
    response.once('finish', done);
    response.once('close', done);
    if (state.down && state.downMode === '503') {
      tick(2);
      return answer(response, 503, '{"error":"DOWN"}');
    }
    if (state.down && state.downMode === 'hang') {
      hanging.add(response);
      response.once('close', () => hanging.delete(response));
      return;
    }
    const reply = () => (upstream ? forward(request, body, response) : answer(response, 200, '{}'));
    const delay = latencyFor(route[1], route[2]);
    if (delay > 0) setTimeout(reply, delay);
    else reply();
  } else if (request.method === 'GET' && request.url === '/health') {
    answer(response, 200, '{}');
  } else {
    response.writeHead(404, { 'content-length': 0 });
    response.end();
  }
}

const NO_BODY = Buffer.alloc(0);
const server = http.createServer((request, response) => {
  // The body matters only to forward it.
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => (upstream ? chunks.push(c) : undefined));
  request.on('end', () => serve(request, upstream ? Buffer.concat(chunks) : NO_BODY, response));
});
server.on('connection', (socket: Socket) => {
  if (state.down && state.downMode === 'reset') {
    stats.resets++;
    tick(1);
    socket.resetAndDestroy();
  }
});
// Keep idle sockets of the coordinator's and the bench's agents open across pauses between runs.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
// Requests held by the latency knob or `hang` are not timed out by the server.
server.requestTimeout = 0;

const listen = () =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

async function setDown(down: boolean, mode: DownMode): Promise<void> {
  if (down === state.down && mode === state.downMode) return;
  const wasClosed = state.down && state.downMode === 'closed';
  state.down = down;
  state.downMode = mode;
  if (down) {
    // Whatever the mode, the connections the coordinator holds now break.
    if (mode === 'closed') {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    } else if (mode === 'reset') {
      server.closeAllConnections();
    }
  } else {
    for (const response of hanging) response.destroy();
    hanging.clear();
    if (wasClosed) await listen();
  }
}

function control(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): void {
  const reply = (status: number, value: unknown) => {
    const text = JSON.stringify(value);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    response.end(text);
  };
  const view = () => ({
    calls: stats.calls,
    answered: stats.answered,
    answered503: stats.answered503,
    resets: stats.resets,
    inFlight: stats.inFlight,
    maxInFlight: stats.maxInFlight,
    latency: state.latency,
    down: state.down ? state.downMode : false,
    perSecond: [...stats.perSecond].map(([second, row]) => [second, ...row]),
  });
  if (request.method === 'GET' && request.url === '/stats') return reply(200, view());
  if (request.method === 'POST' && request.url === '/stats/reset') {
    const inFlight = stats.inFlight;
    stats = fresh();
    stats.inFlight = inFlight;
    stats.maxInFlight = inFlight;
    return reply(200, view());
  }
  if (request.method === 'POST' && request.url === '/control') {
    let change: { latencyMs?: Latency; down?: boolean; downMode?: DownMode };
    try {
      change = body.length ? (JSON.parse(body.toString('utf8')) as typeof change) : {};
      if (change.downMode !== undefined && !DOWN_MODES.includes(change.downMode)) throw new Error(`downMode: one of ${DOWN_MODES.join(', ')}`);
    } catch (error) {
      return reply(400, { error: String(error) });
    }
    if (change.latencyMs !== undefined) state.latency = typeof change.latencyMs === 'string' ? parseLatency(change.latencyMs) : change.latencyMs;
    const down = change.down ?? state.down;
    const mode = change.downMode ?? (change.down === undefined ? state.downMode : 'closed');
    setDown(down, mode).then(
      () => reply(200, view()),
      (error: unknown) => reply(500, { error: String(error) }),
    );
    return;
  }
  reply(404, { error: 'NOT_FOUND' });
}

if (controlPort !== null) {
  const controlServer = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => control(request, Buffer.concat(chunks), response));
  });
  controlServer.listen(controlPort, '127.0.0.1');
}

void listen().then(() => {
  console.log(`plain participant listening on 127.0.0.1:${port}${controlPort === null ? '' : `, control on ${controlPort}`}${upstream ? `, forwarding to ${upstream.origin}` : ''}`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
});
