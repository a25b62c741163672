import { request, type Agent } from 'node:http';

export interface RawAnswer {
  status: number;
  text: string;
}

export interface RawRequest {
  method: string;
  /** Path and query, sent as written. */
  path: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  /** Send the body in 64 KiB chunks with Transfer-Encoding: chunked instead of Content-Length. */
  chunked?: boolean;
  /**
   * The connection pool. Without one, every request has a connection of its own: a reused
   * keep-alive connection can be closed by the server's idle timeout just as the next request
   * is written, which fails the request (EPIPE, ECONNRESET) with nothing wrong on either side.
   */
  agent?: Agent;
}

/**
 * One HTTP request to 127.0.0.1:port over node:http, answered with the status and the whole
 * body. A server may answer before it has read the body (401, 413, 415 are decided from the
 * headers) and close while the body is still being written: once the answer has arrived, an
 * error writing the rest of the body is not the request's failure.
 */
export function rawHttp(port: number, req: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...req.headers };
    // A string body stays a string: Node then writes it in one piece with the head, in UTF-8,
    // header values included (a Buffer body would send them as latin1), as the tests expect.
    const body = req.body;
    if (body !== undefined && !req.chunked) headers['content-length'] = String(Buffer.byteLength(body));
    let answered = false;
    const outgoing = request({ host: '127.0.0.1', port, path: req.path, method: req.method, headers, agent: req.agent ?? false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    outgoing.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (body !== undefined && req.chunked) {
      const bytes = Buffer.from(body);
      for (let i = 0; i < bytes.length; i += 64 * 1024) outgoing.write(bytes.subarray(i, i + 64 * 1024));
      outgoing.end();
    } else {
      outgoing.end(body);
    }
  });
}
