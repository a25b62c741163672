/**
 * What a caller can grow is bounded, and what a key began is its own: a real coordinator with
 * API keys and small limits (MAX_BRANCHES_PER_TRANSACTION, MAX_PARTICIPANTS_PER_KEY,
 * MAX_ACTIONS_PER_PARTICIPANT), a bare participant that answers 200 to every call. Covers the
 * limits, the paged participant list, DELETE /v1/participants/{name}, owner-scoped client keys
 * and case-insensitive participant names (docs/rest-api.md "Limits").
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ParticipantView, type TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { coordinator, type CoordinatorHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

const key = (role: string) => `${role}-${randomBytes(12).toString('hex')}`;
const KEYS = { admin: key('admin'), clientA: key('client-a'), clientB: key('client-b'), partA: key('part-a'), partB: key('part-b') };
type Who = keyof typeof KEYS;

let database: TestDatabase;
let coord: CoordinatorHandle;
let bare: Server;
let endpoint: string;

type Answer<T> = { status: number; json: T & { error?: string; field?: string; message?: string }; headers: Headers };

async function call<T = Record<string, unknown>>(who: Who, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Answer<T>> {
  const response = await fetch(`${coord.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEYS[who]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, json: (text ? JSON.parse(text) : {}) as Answer<T>['json'], headers: response.headers };
}

const register = (who: Who, name: string, actions = [{ name: 'op', modes: ['tcc', 'saga'] }]) =>
  call<{ name: string; signingSecret: string }>(who, 'POST', '/v1/participants', { name, transport: 'http', endpoint, actions });

const branch = (participant: string, branchId?: string) => ({ participant, action: 'op', payload: {}, ...(branchId ? { branchId } : {}) });

beforeAll(async () => {
  bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((done) => bare.listen(0, '127.0.0.1', done));
  endpoint = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/tx`;
  database = await createTestDatabase('limits_coord');
  coord = await coordinator('limits-coordinator', database.url, {
    API_KEYS: `admin:${KEYS.admin},client:${KEYS.clientA},client:${KEYS.clientB},participant:${KEYS.partA},participant:${KEYS.partB}`,
    MAX_BRANCHES_PER_TRANSACTION: '3',
    MAX_PARTICIPANTS_PER_KEY: '4',
    MAX_ACTIONS_PER_PARTICIPANT: '2',
  });
  await coord.start();
  expect((await register('partA', 'acct')).status).toBe(201);
});

afterAll(async () => {
  await coord?.process.kill();
  bare?.close();
  await database?.drop();
});

describe('limits', () => {
  it('refuses a begin with more branches or steps than MAX_BRANCHES_PER_TRANSACTION, naming the field', async () => {
    const four = ['b1', 'b2', 'b3', 'b4'].map((id) => branch('acct', id));
    const tcc = await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', branches: four });
    expect(tcc).toMatchObject({ status: 400, json: { error: ErrorCode.VALIDATION_FAILED, field: 'branches' } });
    const steps = ['s1', 's2', 's3', 's4'].map((name) => ({ name, participant: 'acct', action: 'op' }));
    const saga = await call('clientA', 'POST', '/v1/transactions', { mode: 'saga', steps });
    expect(saga).toMatchObject({ status: 400, json: { error: ErrorCode.VALIDATION_FAILED, field: 'steps' } });
    const three = await call<TransactionView>('clientA', 'POST', '/v1/transactions', { mode: 'tcc', branches: four.slice(0, 3), wait: true });
    expect(three.status).toBe(201);
    expect(three.json.status).toBe('committed');
  });

  it('refuses the branch past the limit of an interactive transaction with 409 TOO_MANY_BRANCHES, and still answers a recorded one', async () => {
    const gid = `lim-${randomBytes(3).toString('hex')}`;
    expect((await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', gid })).status).toBe(201);
    for (const id of ['x1', 'x2', 'x3']) {
      expect(await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('acct', id))).toMatchObject({ status: 201, json: { status: 'prepared' } });
    }
    const fourth = await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('acct', 'x4'));
    expect(fourth).toMatchObject({ status: 409, json: { error: ErrorCode.TOO_MANY_BRANCHES, limit: 3 } });
    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('acct', 'x3'))).status).toBe(201);
    const view = await call<TransactionView>('clientA', 'GET', `/v1/transactions/${gid}`);
    expect(view.json.branches.map((b) => b.branchId)).toEqual(['x1', 'x2', 'x3']);
    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/commit`, { wait: true })).json).toMatchObject({ status: 'committed' });
  });

  it('refuses a registration with more actions than MAX_ACTIONS_PER_PARTICIPANT, naming actions', async () => {
    const actions = ['a', 'b', 'c'].map((name) => ({ name, modes: ['tcc'] }));
    expect(await register('partA', 'many-actions', actions)).toMatchObject({ status: 400, json: { error: ErrorCode.VALIDATION_FAILED, field: 'actions' } });
  });

  it('refuses a key its name past MAX_PARTICIPANTS_PER_KEY with 403 PARTICIPANT_LIMIT, but not an update of one it owns', async () => {
    for (const name of ['quota-1', 'quota-2', 'quota-3', 'quota-4']) expect((await register('partB', name)).status).toBe(201);
    expect(await register('partB', 'quota-5')).toMatchObject({ status: 403, json: { error: ErrorCode.PARTICIPANT_LIMIT } });
    expect((await register('partB', 'quota-2')).status).toBe(201);
    // Another key's count is its own.
    expect((await register('partA', 'quota-a')).status).toBe(201);
    expect((await call('admin', 'DELETE', '/v1/participants/quota-4')).status).toBe(204);
    expect((await register('partB', 'quota-5')).status).toBe(201);
  });
});

describe('GET /v1/participants', () => {
  it('pages with limit and cursor, and without them keeps the bare array', async () => {
    const all = await call<ParticipantView[]>('clientA', 'GET', '/v1/participants');
    expect(all.status).toBe(200);
    expect(Array.isArray(all.json)).toBe(true);
    expect(all.headers.get('x-next-cursor')).toBeNull();
    const paged: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page: Answer<{ items: ParticipantView[]; nextCursor: string | null }> = await call('clientA', 'GET', `/v1/participants${query}`);
      expect(page.status).toBe(200);
      expect(page.json.items.length).toBeLessThanOrEqual(2);
      paged.push(...page.json.items.map((p) => p.name));
      cursor = page.json.nextCursor;
      if (!cursor) break;
    }
    expect(paged).toEqual(all.json.map((p) => p.name));
    expect(paged.length).toBeGreaterThan(2);
    const sdk = new TransactionClient({ coordinatorUrl: coord.url, apiKey: KEYS.clientA });
    expect((await sdk.listParticipantsPage({ limit: 200 })).items.map((p) => p.name)).toEqual(paged);
  });

  it('refuses a cursor it did not hand out, and a limit past 200', async () => {
    expect(await call('clientA', 'GET', '/v1/participants?cursor=bm90IGEgbmFtZSE')).toMatchObject({ status: 400, json: { field: 'cursor' } });
    expect(await call('clientA', 'GET', '/v1/participants?limit=201')).toMatchObject({ status: 400, json: { field: 'limit' } });
  });
});

describe('DELETE /v1/participants/{name}', () => {
  it('deletes only for the owning key (or admin), never while an unfinished transaction has a branch on it', async () => {
    const first = await register('partA', 'doomed');
    expect(first.status).toBe(201);
    const gid = `del-${randomBytes(3).toString('hex')}`;
    await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', gid });
    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('doomed'))).status).toBe(201);

    expect(await call('partB', 'DELETE', '/v1/participants/doomed')).toMatchObject({ status: 403, json: { error: ErrorCode.FORBIDDEN } });
    expect(await call('partA', 'DELETE', '/v1/participants/doomed')).toMatchObject({ status: 409, json: { error: ErrorCode.PARTICIPANT_IN_USE } });
    expect(await call('clientA', 'DELETE', '/v1/participants/doomed')).toMatchObject({ status: 403, json: { error: ErrorCode.FORBIDDEN } });

    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/rollback`, { wait: true })).json).toMatchObject({ status: 'rolled_back' });
    expect((await call('partA', 'DELETE', '/v1/participants/DOOMED')).status).toBe(204);
    const listed = await call<ParticipantView[]>('clientA', 'GET', '/v1/participants');
    expect(listed.json.map((p) => p.name)).not.toContain('doomed');
    expect(await call('partA', 'DELETE', '/v1/participants/doomed')).toMatchObject({ status: 404, json: { error: ErrorCode.NOT_FOUND } });
    expect(await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', branches: [branch('doomed')] })).toMatchObject({
      status: 400,
      json: { error: ErrorCode.UNKNOWN_PARTICIPANT },
    });

    // Registered again (here by another key): a secret the previous owner never saw.
    const again = await register('admin', 'doomed');
    expect(again.status).toBe(201);
    expect(again.json.signingSecret).not.toBe(first.json.signingSecret);
    // The SDK's client deletes too.
    await new TransactionClient({ coordinatorUrl: coord.url, apiKey: KEYS.admin }).deleteParticipant('doomed');
    expect(await call('admin', 'DELETE', '/v1/participants/doomed')).toMatchObject({ status: 404 });
  });
});

describe('owner-scoped client keys', () => {
  it('shows a transaction only to the key that began it (404 to another client key), and to admin keys', async () => {
    const gid = `own-${randomBytes(3).toString('hex')}`;
    expect((await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', gid })).status).toBe(201);
    const notFound = { status: 404, json: { error: ErrorCode.TX_NOT_FOUND } };
    expect(await call('clientB', 'GET', `/v1/transactions/${gid}`)).toMatchObject(notFound);
    expect(await call('clientB', 'POST', `/v1/transactions/${gid}/branches`, branch('acct', 'b'))).toMatchObject(notFound);
    expect(await call('clientB', 'POST', `/v1/transactions/${gid}/commit`, {})).toMatchObject(notFound);
    expect(await call('clientB', 'POST', `/v1/transactions/${gid}/rollback`, {})).toMatchObject(notFound);
    // The same begin from another key: a conflict, with nothing of the transaction in the answer.
    const taken = await call('clientB', 'POST', '/v1/transactions', { mode: 'tcc', gid });
    expect(taken).toMatchObject({ status: 409, json: { error: ErrorCode.GID_CONFLICT } });
    expect(JSON.stringify(taken.json)).not.toContain('active');

    expect((await call<TransactionView>('admin', 'GET', `/v1/transactions/${gid}`)).json).toMatchObject({ gid, status: 'active', branches: [] });
    expect((await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', gid })).status).toBe(200);
    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('acct', 'b'))).status).toBe(201);
    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/commit`, { wait: true })).json).toMatchObject({ status: 'committed' });
    expect((await call<TransactionView>('clientA', 'GET', `/v1/transactions/${gid}`)).json.branches).toHaveLength(1);
  });
});

describe('case-insensitive participant names', () => {
  it('treats Bank-Case and bank-case as one participant: same key updates it, another key is refused', async () => {
    expect((await register('partA', 'Bank-Case')).status).toBe(201);
    expect(await register('partB', 'bank-case')).toMatchObject({ status: 403, json: { error: ErrorCode.FORBIDDEN, field: 'name' } });
    const updated = await register('partA', 'BANK-CASE', [{ name: 'op', modes: ['tcc'] }, { name: 'op2', modes: ['tcc'] }]);
    expect(updated).toMatchObject({ status: 201, json: { name: 'Bank-Case' } });
    const listed = (await call<ParticipantView[]>('clientA', 'GET', '/v1/participants')).json.filter((p) => p.name.toLowerCase() === 'bank-case');
    expect(listed).toHaveLength(1);
    expect(listed[0].actions.map((a) => a.name)).toEqual(['op', 'op2']);

    const begun = await call<TransactionView>('clientA', 'POST', '/v1/transactions', { mode: 'tcc', branches: [branch('bank-CASE')], wait: true });
    expect(begun.status).toBe(201);
    expect(begun.json).toMatchObject({ status: 'committed', branches: [{ participant: 'Bank-Case' }] });
    const gid = `case-${randomBytes(3).toString('hex')}`;
    await call('clientA', 'POST', '/v1/transactions', { mode: 'tcc', gid });
    expect(await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('BANK-case', 'b'))).toMatchObject({ status: 201, json: { status: 'prepared' } });
    // The same branchId again, in yet another spelling, is the same branch (no BRANCH_CONFLICT).
    expect((await call('clientA', 'POST', `/v1/transactions/${gid}/branches`, branch('bank-case', 'b'))).status).toBe(201);
    await call('clientA', 'POST', `/v1/transactions/${gid}/rollback`, {});
  });
});
