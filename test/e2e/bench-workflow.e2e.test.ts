/**
 * The bench's mode `workflow` (scripts/lib/bench/modes.ts, workflow-host.ts) against a real
 * coordinator and the bench's plain participants: one transaction of the mode is a committed
 * workflow of two tcc steps on them, a failure is reported and rolled back, and the host inside
 * the bench counts the coordinator's resumes, so the bench's "no resume" is a count that would
 * have seen one (here the resume interval is short enough for a quiet workflow to be resumed).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionView } from '@nest-dtx/protocol';
import { coordinator, getJson, postJson, until, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { closeAgent } from '../../scripts/lib/bench/http-client.js';
import { MODES } from '../../scripts/lib/bench/modes.js';
import { startParticipants, type BenchParticipants } from '../../scripts/lib/bench/participants.js';
import { startWorkflowHost, type WorkflowHost } from '../../scripts/lib/bench/workflow-host.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

/** Long enough that a workflow driven straight through is never resumed, short enough to see one that goes quiet. */
const RESUME_MS = 1_500;
const run = randomBytes(3).toString('hex');

let database: TestDatabase;
let coord: CoordinatorHandle;
let parts: BenchParticipants;
let host: WorkflowHost;

const view = (gid: string) => getJson<TransactionView>(`${coord.url}/v1/transactions/${gid}`);
const terminal = (gid: string) =>
  until(`${gid} to end`, async () => {
    const current = await view(gid);
    return current.status === 'committed' || current.status === 'rolled_back' ? current : undefined;
  });

beforeAll(async () => {
  database = await createTestDatabase('bench_wf_coord');
  coord = await coordinator(`bench-wf-coordinator-${run}`, database.url, { WORKFLOW_RESUME_MS: String(RESUME_MS), RATE_LIMIT_PER_MINUTE: '0' });
  await coord.start();
  parts = await startParticipants('plain', coord.url, false);
  host = await startWorkflowHost(coord.url);
  parts.workflowHost = host;
});

afterAll(async () => {
  await host?.stop();
  await parts?.stop();
  await coord?.process.kill();
  closeAgent();
  await database?.drop();
});

describe('bench mode workflow', () => {
  it('is a workflow of two tcc steps on the two participants, committed, its host never called', async () => {
    const gid = `bench-wf-ok-${run}`;
    const callsBefore = host.calls();
    expect(await MODES.workflow.viaCoordinator(coord.url, gid, 7, parts)).toBeNull();
    const done = await terminal(gid);
    expect(done).toMatchObject({ mode: 'workflow', status: 'committed', workflow: { participant: host.participant, name: host.name }, input: { i: 7 } });
    expect(done.branches.map((b) => [b.branchId, b.kind, b.participant, b.action, b.status])).toEqual([
      ['a', 'tcc', parts.a.participant, parts.a.action, 'committed'],
      ['b', 'tcc', parts.b.participant, parts.b.action, 'committed'],
    ]);
    expect(host.calls()).toBe(callsBefore);
  });

  it('reports a step the coordinator refused, and leaves the workflow rolled back', async () => {
    const gid = `bench-wf-refused-${run}`;
    const failure = await MODES.workflow.viaCoordinator(coord.url, gid, 0, { ...parts, b: { ...parts.b, action: 'not-registered' } });
    expect(failure).toMatch(/^step b: 400 UNKNOWN_ACTION/);
    const done = await terminal(gid);
    expect(done.status).toBe('rolled_back');
    expect(done.branches.map((b) => [b.branchId, b.status])).toEqual([['a', 'rolled_back']]);
  });

  it('counts a resume: a workflow left quiet past the resume interval calls its host at {name}/resume', async () => {
    const gid = `bench-wf-quiet-${run}`;
    const callsBefore = host.calls();
    const begun = await postJson<TransactionView>(`${coord.url}/v1/transactions`, {
      mode: 'workflow',
      gid,
      timeoutMs: 60_000,
      workflow: { participant: host.participant, name: host.name },
      input: { quiet: true },
    });
    expect(begun.status).toBe(201);
    await until(`${host.participant} to be resumed`, () => Promise.resolve(host.calls() > callsBefore ? true : undefined), 20_000);
    expect(host.paths().slice(callsBefore)[0]).toBe(`/tx/${host.name}/resume`);
    expect((await postJson(`${coord.url}/v1/transactions/${gid}/rollback`, {})).status).toBe(200);
    expect((await terminal(gid)).status).toBe('rolled_back');
  });
});
