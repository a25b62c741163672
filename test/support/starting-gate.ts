import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of Postgres that holds every connection until `count` are waiting, then
 * lets them all through at once (and every later one straight away). Processes that boot at
 * different speeds thus send their first statements within milliseconds of each other.
 */
export interface StartingGate {
  /** The address to give the processes instead of Postgres's. */
  port: number;
  /** Resolves when the gate opened. */
  opened: Promise<void>;
  close(): Promise<void>;
}

export async function startingGate(target: { host: string; port: number }, count: number): Promise<StartingGate> {
  const held: Socket[] = [];
  const sockets = new Set<Socket>();
  let open = false;
  let markOpened: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (markOpened = resolve));
  const forward = (socket: Socket): void => {
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    socket.pipe(upstream).pipe(socket);
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    if (open) return forward(socket);
    socket.pause();
    held.push(socket);
    if (held.length < count) return;
    open = true;
    for (const waiting of held.splice(0)) {
      forward(waiting);
      waiting.resume();
    }
    markOpened();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    opened,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
