/**
 * A "plain" bench participant: a bare `node:http` server on 127.0.0.1:$PORT that answers every
 * `POST /tx/{action}/{phase}` at once with 200 and `{}` (the body is read and discarded), so
 * the coordinator's own cost is what a benchmark against it measures. Started by
 * scripts/bench.ts as a child process; it does not verify signatures and keeps no state.
 */
import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
const ROUTE = /^\/tx\/[^/]+\/[^/]+$/;

const server = http.createServer((request, response) => {
  request.on('data', () => undefined);
  request.on('end', () => {
    if (request.method === 'POST' && ROUTE.test(request.url ?? '')) {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
      response.end('{}');
    } else if (request.method === 'GET' && request.url === '/health') {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
      response.end('{}');
    } else {
      response.writeHead(404, { 'content-length': 0 });
      response.end();
    }
  });
});
// Keep idle sockets of the coordinator's and the bench's agents open across pauses between runs.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`plain participant listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
