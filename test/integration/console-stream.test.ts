/**
 * The console's live feed (GET /admin/stream) over real HTTP: it forwards the bus's transaction
 * changes as server-sent events, and a client that leaves (or a shutdown) removes its listener.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessTxEventBus, TxEventBus } from '../../apps/coordinator/src/bus/tx-event-bus.js';
import { ConsoleAssets } from '../../apps/coordinator/src/console/console-assets.service.js';
import { ConsoleController } from '../../apps/coordinator/src/console/console.controller.js';
import { TransactionFeed } from '../../apps/coordinator/src/console/transaction-feed.service.js';
import { until } from '../../scripts/lib/stack.js';

/** The in-process bus, telling how many listeners it has. */
class CountingBus extends InProcessTxEventBus {
  get listeners(): number {
    return this.local.listenerCount('message');
  }
}

let app: INestApplication | null = null;

async function startConsole(bus: TxEventBus): Promise<string> {
  const moduleRef = await Test.createTestingModule({
    controllers: [ConsoleController],
    providers: [ConsoleAssets, TransactionFeed, { provide: TxEventBus, useValue: bus }],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const address = (app.getHttpServer() as { address(): { port: number } }).address();
  return `http://127.0.0.1:${address.port}`;
}

/** Reads a server-sent-events body until `expected` has arrived; returns everything read. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, expected: string, sofar = ''): Promise<string> {
  const decoder = new TextDecoder();
  let text = sofar;
  while (!text.includes(expected)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${JSON.stringify(expected)}; got ${JSON.stringify(text)}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

afterEach(async () => {
  await app?.close();
  app = null;
});

describe('GET /admin/stream', () => {
  it('sends ready, then the gid and status of each transaction change, and nothing else', async () => {
    const bus = new CountingBus();
    const url = await startConsole(bus);
    const response = await fetch(`${url}/admin/stream`);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const start = await readUntil(reader, 'event: ready');
    expect(start).toContain('retry: 2000');
    expect(bus.listeners).toBe(1);

    bus.publish({ kind: 'participant', name: 'bank-a' });
    bus.publish({ kind: 'tx', gid: 'g-1', status: 'committing' });
    bus.publish({ kind: 'tx', gid: 'g-1', status: 'committed' });
    const text = await readUntil(reader, '"status":"committed"', start);
    const events = text
      .split('\n\n')
      .filter((block) => block.includes('event: tx'))
      .map((block) => JSON.parse(block.split('\n').find((line) => line.startsWith('data: '))!.slice('data: '.length)) as unknown);
    expect(events).toEqual([
      { gid: 'g-1', status: 'committing' },
      { gid: 'g-1', status: 'committed' },
    ]);
    expect(text).not.toContain('bank-a');
    await reader.cancel();
  });

  it('removes the bus listener when the client disconnects', async () => {
    const bus = new CountingBus();
    const url = await startConsole(bus);
    const clients = [new AbortController(), new AbortController()];
    const readers = await Promise.all(
      clients.map(async (client) => (await fetch(`${url}/admin/stream`, { signal: client.signal })).body!.getReader()),
    );
    await Promise.all(readers.map((reader) => readUntil(reader, 'event: ready')));
    expect(bus.listeners).toBe(2);

    clients[0].abort();
    await until('one listener left', () => Promise.resolve(bus.listeners === 1 ? true : undefined), 10_000, 20);
    clients[1].abort();
    await until('no listener left', () => Promise.resolve(bus.listeners === 0 ? true : undefined), 10_000, 20);
  });

  it('ends open streams at shutdown, so they do not hold the server', async () => {
    const bus = new CountingBus();
    const url = await startConsole(bus);
    const reader = (await fetch(`${url}/admin/stream`)).body!.getReader();
    await readUntil(reader, 'event: ready');
    await app!.close();
    app = null;
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    expect(bus.listeners).toBe(0);
  });
});

describe('console files', () => {
  it('serves the page and its assets by exact name only', async () => {
    const url = await startConsole(new CountingBus());
    const page = await fetch(`${url}/admin`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/admin/assets/console.js');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    for (const [name, type] of [['console.js', 'text/javascript'], ['console.css', 'text/css'], ['dom.js', 'text/javascript']]) {
      const asset = await fetch(`${url}/admin/assets/${name}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toContain(type);
    }
    for (const path of ['/admin/assets/missing.js', '/admin/assets/..%2F..%2Fpackage.json', '/admin/assets/index.htm']) {
      expect((await fetch(`${url}${path}`)).status).toBe(404);
    }
  });
});
