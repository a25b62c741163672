import type { Server } from 'node:http';

/**
 * Closes a server the tests started, if they got that far: an afterAll that awaits
 * `server.close(callback)` on a server its failed beforeAll never made throws (or, with `?.`,
 * waits forever for a callback that never comes), and skips the clean-up after it.
 */
export function closeServer(server: Server | null | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  return new Promise((closed) => server.close(() => closed()));
}
