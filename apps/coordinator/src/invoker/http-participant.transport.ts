import http from 'node:http';
import https from 'node:https';
import { AT_LOCKS_HEADER, callId, ongoingOutcome, readBranchLocks, signCall, TX_HEADERS, type CallOutcome, type Json, type PhaseCallBody, type TraceContextHeaders } from '@nest-dtx/protocol';
import { addressOfHost, type EgressPolicy } from '../participants/egress-policy.js';
import { checkedLookup } from './checked-lookup.js';

/** The most of an answer the coordinator reads: past it the connection is cut and the call is transient. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

function parseJson(text: string): Json {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
  }
}

/**
 * The ok outcome of a 2xx answer, with the rows an AT prepare reports it locked (header
 * `x-tx-at-locks`). The header is for the admin view only: one that is repeated or malformed is
 * left out, never a reason to treat the answer as anything but ok.
 */
export function okOutcome(result: Json, locksHeader: string | string[] | undefined): CallOutcome {
  const locks = typeof locksHeader === 'string' ? readBranchLocks(locksHeader) : null;
  return locks ? { kind: 'ok', result, locks } : { kind: 'ok', result };
}

/** A parsed endpoint; `refusal`: why the policy refuses its address literal (null for a name, or an allowed address). */
interface HttpTarget {
  secure: boolean;
  hostname: string;
  port: string;
  path: string;
  refusal: string | null;
}

/** What goes on one call besides its body. */
export interface HttpCallOptions {
  /** `instance/leaseVersion` of the sender (x-tx-coordinator). */
  sender: string;
  /** The W3C trace context of the call, as headers (PROTOCOL.md 5.1). */
  trace?: TraceContextHeaders;
  /** The participant's signing keys, current first (PROTOCOL.md 5.5). */
  keys: readonly Buffer[];
  /** Headers the participant registered (an API gateway's credentials). */
  headers: Readonly<Record<string, string>>;
}

/**
 * PROTOCOL.md 5.1 over HTTP: POST {endpoint}/{action}/{phase}. Keep-alive agents reuse
 * connections across calls; every call has its own deadline. 202 is ongoing (3.6), any other
 * 2xx ok, 409 a business failure, anything else (or no answer in time) transient.
 */
export class HttpParticipantTransport {
  /** Endpoints parsed once: a URL parse per call showed in the profile. */
  private readonly endpoints = new Map<string, HttpTarget>();
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  /**
   * Every address a name resolves to passes the egress policy before a connection is opened to
   * it (the agents' lookup): a name registered as harmless cannot later resolve to a metadata
   * service or the coordinator's own network. Redirects are never followed (node:http does
   * not), so a participant cannot send the call elsewhere either.
   */
  constructor(
    private readonly policy: EgressPolicy,
    private readonly maxAnswerBytes: number = MAX_ANSWER_BYTES,
  ) {
    const lookup = checkedLookup(policy);
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000, lookup });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000, lookup });
  }

  call(endpoint: string, body: PhaseCallBody, timeoutMs: number, options: HttpCallOptions): Promise<CallOutcome> {
    const target = this.parsed(endpoint);
    // An address literal never reaches the agents' lookup (nothing to resolve), so it is checked
    // here: the registration check may have run under another policy.
    if (target.refusal !== null) return Promise.resolve({ kind: 'transient', error: target.refusal });
    const payload = JSON.stringify(body);
    const client = target.secure ? https : http;
    // Registered headers first: the protocol's own come after and could not be overridden
    // (registration refuses those names anyway).
    const headers: http.OutgoingHttpHeaders = {
      ...options.headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      [TX_HEADERS.gid]: body.gid,
      [TX_HEADERS.branchId]: body.branchId,
      [TX_HEADERS.instance]: options.sender,
    };
    const { trace } = options;
    if (trace?.traceparent) headers.traceparent = trace.traceparent;
    if (trace?.tracestate) headers.tracestate = trace.tracestate;
    const id = callId(body);

    return new Promise<CallOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: CallOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const request = client.request(
        {
          method: 'POST',
          hostname: target.hostname,
          port: target.port,
          path: `${target.path}/${encodeURIComponent(body.action)}/${body.phase}`,
          headers,
          agent: target.secure ? this.httpsAgent : this.httpAgent,
        },
        (response) => {
          if (Number(response.headers['content-length'] ?? 0) > this.maxAnswerBytes) {
            settle({ kind: 'transient', error: `answer larger than ${this.maxAnswerBytes} bytes` });
            response.destroy();
            request.destroy();
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= this.maxAnswerBytes) {
              chunks.push(chunk);
              return;
            }
            // Reading on would let a participant hold the coordinator's memory and time: stop
            // and cut the connection (it cannot be reused mid-answer anyway).
            settle({ kind: 'transient', error: `answer larger than ${this.maxAnswerBytes} bytes` });
            response.destroy();
            request.destroy();
          });
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            const answer = parseJson(Buffer.concat(chunks).toString('utf8'));
            // 202: accepted, the outcome not known yet (PROTOCOL.md 3.6); its body's retryAfterMs is
            // only a hint, so a body that does not parse, or has none, is simply no hint.
            if (status === 202) settle(ongoingOutcome(answer));
            else if (status >= 200 && status < 300) settle(okOutcome(answer, response.headers[AT_LOCKS_HEADER]));
            else if (status === 409) settle({ kind: 'failed', error: answer });
            else settle({ kind: 'transient', error: `HTTP ${status}: ${JSON.stringify(answer).slice(0, 500)}` });
          });
          response.on('error', (error) => settle({ kind: 'transient', error: error.message }));
        },
      );
      const timer = setTimeout(() => {
        settle({ kind: 'transient', error: `no answer within ${timeoutMs} ms` });
        request.destroy();
      }, timeoutMs);
      request.on('error', (error) => settle({ kind: 'transient', error: error.message }));
      // The body goes out only once the request has its connected socket, and only while the
      // call's own deadline (within the lease it was sent under) has not passed. A process paused
      // (SIGSTOP, a stall) between creating the call and writing it could otherwise wake up and
      // write it after its lease ran out, while another instance drives the transaction: on
      // resume, a pending socket assignment can run before the expired timer (seen on Node 24).
      // Monotonic: a wall clock stepped back during a pause must not reopen the window.
      const deadline = performance.now() + timeoutMs;
      const send = (): void => {
        if (settled) return;
        if (performance.now() >= deadline) {
          settle({ kind: 'transient', error: `not sent: its ${timeoutMs} ms ran out before it had a connection` });
          request.destroy();
          return;
        }
        // Signed when it is sent, not when it was created: the timestamp the participant checks
        // against its clock is the moment the call leaves.
        const signed = signCall(options.keys, id, Date.now() / 1000, payload);
        for (const [name, value] of Object.entries(signed)) request.setHeader(name, value);
        request.end(payload);
      };
      request.once('socket', (socket) => {
        if (socket.connecting) socket.once('connect', send);
        else send();
      });
    });
  }

  private parsed(endpoint: string): HttpTarget {
    let target = this.endpoints.get(endpoint);
    if (!target) {
      const url = new URL(endpoint);
      const secure = url.protocol === 'https:';
      // IPv6 literals come bracketed from URL; http.request wants them bare.
      const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const address = addressOfHost(hostname);
      const refusal = address === null ? null : this.policy.refusal(address);
      target = { secure, hostname, port: url.port || (secure ? '443' : '80'), path: url.pathname.replace(/\/+$/, ''), refusal };
      this.endpoints.set(endpoint, target);
    }
    return target;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
