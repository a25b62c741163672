import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Where the bench's coordinator exports its telemetry when `--trace-sampling` turns tracing on:
 * an OTLP/HTTP endpoint on loopback that answers every export 200 at once and keeps only counts,
 * so what the bench measures is the coordinator's cost of tracing (spans made, batched, encoded
 * and sent in the default http/protobuf), not a collector's.
 */
export class OtlpSink {
  private server: Server | null = null;
  private port = 0;
  /** Export requests and their bytes, by path (/v1/traces, /v1/metrics). */
  readonly received = new Map<string, { requests: number; bytes: number }>();

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      let bytes = 0;
      request.on('data', (chunk: Buffer) => (bytes += chunk.length));
      request.on('end', () => {
        const path = request.url ?? '';
        const seen = this.received.get(path) ?? { requests: 0, bytes: 0 };
        this.received.set(path, { requests: seen.requests + 1, bytes: seen.bytes + bytes });
        response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** One line for the bench's output. */
  summary(): string {
    const parts = [...this.received].map(([path, { requests, bytes }]) => `${path}: ${requests} export(s), ${(bytes / 1024).toFixed(0)} KiB`);
    return parts.length > 0 ? parts.join('; ') : 'nothing exported';
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
