// Container health check: exits 0 when GET http://127.0.0.1:$PORT<path> answers 2xx within
// 4 s, 1 otherwise. Node rather than curl, which slim images do not have.
//   node docker/healthcheck.mjs [path]   (default /health/ready, the coordinator's readiness)
// The health routes need no API key. The server must listen on loopback too (HOST 0.0.0.0,
// :: or 127.0.0.1), which it does with the image's HOST=0.0.0.0.
const path = process.argv[2] ?? '/health/ready';
const port = process.env.PORT || '7070';

try {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(4_000) });
  if (!response.ok) process.stderr.write(`GET ${path}: ${response.status} ${(await response.text()).slice(0, 300)}\n`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  process.stderr.write(`GET ${path}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
