/**
 * The host of the bench's workflows (PROTOCOL.md 3.7): a registered participant with one action
 * in mode `workflow`, whose endpoint is a `node:http` server inside the bench client. The bench
 * client itself drives every workflow over the REST API, as a host would, so the coordinator calls
 * this endpoint only to resume a workflow that went quiet, which a bench run must never let
 * happen (the bench's coordinator gets a resume interval far longer than a run): it counts every
 * call it gets, so that the bench can say none came, and answers `202` (still running, 3.6) so
 * that a resume, if one came, would change nothing the bench measures.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { postJson } from './http-client.js';

export interface WorkflowHost {
  /** The participant name the bench's workflows name as their host. */
  participant: string;
  /** The action (workflow name) it registered in mode workflow. */
  name: string;
  /** Calls the coordinator made to it since it started (resumes: 0 in a sound run). */
  calls(): number;
  /** The paths of the first calls (`/tx/{name}/resume` for a resume), to say what came. */
  paths(): readonly string[];
  stop(): Promise<void>;
}

const HOST_PARTICIPANT = 'bench-workflow-host';
const WORKFLOW_NAME = 'bench-flow';
/** Paths kept: enough to say what came, bounded if a broken run sent thousands. */
const PATHS_KEPT = 20;
/** What a resume would be told: ask again after a long while, beyond any bench run. */
const RETRY_AFTER_MS = 3_600_000;

export async function startWorkflowHost(coordinatorUrl: string): Promise<WorkflowHost> {
  let calls = 0;
  const paths: string[] = [];
  const server = http.createServer((request, response) => {
    calls++;
    if (paths.length < PATHS_KEPT) paths.push(request.url ?? '');
    // The body is not needed: the host has nothing to replay. Read it so the socket stays usable.
    request.resume();
    request.on('end', () => {
      const body = JSON.stringify({ retryAfterMs: RETRY_AFTER_MS });
      response.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const port = (server.address() as AddressInfo).port;
  const stop = () =>
    new Promise<void>((closed) => {
      server.close(() => closed());
      // The coordinator's keep-alive sockets would otherwise hold the close open.
      server.closeAllConnections();
    });

  const registration = {
    name: HOST_PARTICIPANT,
    transport: 'http',
    endpoint: `http://127.0.0.1:${port}/tx`,
    actions: [{ name: WORKFLOW_NAME, modes: ['workflow'] }],
  };
  const answer = await postJson(`${coordinatorUrl}/v1/participants`, registration);
  if (answer.status !== 200 && answer.status !== 201) {
    await stop();
    throw new Error(`registering ${HOST_PARTICIPANT}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  return { participant: HOST_PARTICIPANT, name: WORKFLOW_NAME, calls: () => calls, paths: () => paths, stop };
}
