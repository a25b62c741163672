import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import { readBody } from './servers.js';

/** What the participant answers one call with: an HTTP status and a JSON body. */
export interface ScriptedAnswer {
  status: number;
  body: Json;
}

/**
 * An HTTP participant whose every answer the test decides, for histories no real service
 * gives on demand: a confirm that fails a set number of times, an error of a chosen length.
 * It does not check the coordinator's signature (the coordinator does not need it to).
 */
export interface ScriptedParticipant {
  /** The endpoint to register (`<url>/tx`): calls arrive at `/tx/<action>/<phase>`. */
  endpoint: string;
  /** The calls so far, in the order they arrived. */
  calls: PhaseCallBody[];
  close(): Promise<void>;
}

/** Starts one on a free port; `answer` sees each call and how many came before it. */
export async function scriptedParticipant(answer: (call: PhaseCallBody, earlier: readonly PhaseCallBody[]) => ScriptedAnswer): Promise<ScriptedParticipant> {
  const calls: PhaseCallBody[] = [];
  const server = createServer((request, response) => {
    void readBody(request).then((text) => {
      const call = JSON.parse(text) as PhaseCallBody;
      const { status, body } = answer(call, [...calls]);
      calls.push(call);
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/tx`,
    calls,
    close: () =>
      new Promise<void>((closed) => {
        server.closeAllConnections();
        server.close(() => closed());
      }),
  };
}

