import type { IncomingMessage, Server } from 'node:http';

/**
 * Closes a server the tests started, if they got that far: an afterAll that awaits
 * `server.close(callback)` on a server its failed beforeAll never made throws (or, with `?.`,
 * waits forever for a callback that never comes), and skips the clean-up after it.
 */
export function closeServer(server: Server | null | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  return new Promise((closed) => server.close(() => closed()));
}

/** A request's whole body, as text. */
export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
    request.on('error', fail);
  });
}
