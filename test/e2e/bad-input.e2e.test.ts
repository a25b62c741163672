/**
 * Hostile and malformed requests to every route: each must get a 4xx with a stable error code,
 * never a 500, and none may change a stored transaction.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ID_PATTERN, MODES, NAME_PATTERN } from '@app/protocol';
import { TransactionClient } from '@app/sdk';
import { accountService, coordinator, openAccount, type CoordinatorHandle, type ServiceHandle } from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let databases: TestDatabase[] = [];
let coord: CoordinatorHandle;
let bank: ServiceHandle;

interface Probe {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  contentType?: string;
}

const HOSTILE_STRINGS = [
  "' OR 1=1 --",
  '"; DROP TABLE global_transactions; --',
  '../../etc/passwd',
  '%00',
  '<script>alert(1)</script>',
  'ünïcödé',
  'x'.repeat(129),
  'x'.repeat(10_000),
  '',
  ' ',
];
const WRONG_VALUES: unknown[] = [null, true, 0, -1, 1e308, 2 ** 53 + 1, 'text', [], [1, 2], {}, { nested: { deep: true } }, ...HOSTILE_STRINGS];

function deepJson(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}

const BASE_BRANCH = { participant: 'bank', action: 'debit', payload: { accountId: 'a', amount: 1 } };

const isPlainObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isName = (v: unknown) => typeof v === 'string' && NAME_PATTERN.test(v);
/** What each field accepts; a probe only uses values outside it (null means "absent" for optional fields). */
const VALID: Record<string, (v: unknown) => boolean> = {
  mode: (v) => MODES.includes(v as never),
  gid: (v) => typeof v === 'string' && ID_PATTERN.test(v),
  branchId: (v) => typeof v === 'string' && ID_PATTERN.test(v),
  name: isName,
  participant: (v) => v === 'bank',
  action: (v) => v === 'debit',
  timeoutMs: (v) => Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 86_400_000,
  metadata: isPlainObject,
  payload: isPlainObject,
  concurrent: (v) => typeof v === 'boolean',
  wait: (v) => typeof v === 'boolean',
  transport: (v) => v === 'http',
  endpoint: (v) => typeof v === 'string' && /^https?:\/\/[^/]+/.test(v),
  actions: () => false,
};

/** Request bodies that are wrong in exactly one field, for each field of each body. */
function bodiesWithOneBadField(base: Record<string, unknown>, fields: string[]): string[] {
  return fields.flatMap((field) =>
    WRONG_VALUES.filter((value) => value !== null && !VALID[field](value)).map((value) => JSON.stringify({ ...base, [field]: value })),
  );
}

function probes(existingGid: string): Probe[] {
  const list: Probe[] = [];
  const post = (path: string, body: string, contentType = 'application/json') => list.push({ method: 'POST', path, body, contentType });

  // Begin: every field wrong in turn, on otherwise valid bodies of each mode.
  for (const base of [
    { mode: 'tcc', branches: [BASE_BRANCH] },
    { mode: '2pc', branches: [BASE_BRANCH] },
    { mode: 'saga', steps: [{ name: 's1', ...BASE_BRANCH }] },
  ]) {
    for (const body of bodiesWithOneBadField(base, ['mode', 'gid', 'timeoutMs', 'metadata', 'concurrent', 'wait'])) {
      // Bodies that stay valid (e.g. metadata {}) are filtered out below.
      post('/v1/transactions', body);
    }
  }
  for (const value of WRONG_VALUES.filter((v) => v !== null)) {
    for (const field of ['participant', 'action', 'payload', 'branchId'] as const) {
      if (!VALID[field](value)) post('/v1/transactions', JSON.stringify({ mode: 'tcc', branches: [{ ...BASE_BRANCH, [field]: value }] }));
      if (!VALID[field](value) && field !== 'branchId') {
        post('/v1/transactions', JSON.stringify({ mode: 'saga', steps: [{ name: 's1', ...BASE_BRANCH, [field]: value }] }));
      }
    }
    if (!Array.isArray(value) || value.length > 0) post('/v1/transactions', JSON.stringify({ mode: 'saga', concurrent: true, steps: [{ name: 's1', ...BASE_BRANCH, dependsOn: value }] }));
    if (!VALID.name(value)) post('/v1/transactions', JSON.stringify({ mode: 'saga', steps: [{ name: value, ...BASE_BRANCH }] }));
    post('/v1/transactions', JSON.stringify({ mode: 'tcc', branches: value }));
    post('/v1/transactions', JSON.stringify(value));
  }
  post('/v1/transactions', JSON.stringify({ mode: 'tcc', branches: Array.from({ length: 101 }, (_, i) => ({ ...BASE_BRANCH, branchId: `b${i}` })) }));
  post('/v1/transactions', JSON.stringify({ mode: 'saga', concurrent: true, steps: [{ name: 'a', ...BASE_BRANCH, dependsOn: ['b'] }, { name: 'b', ...BASE_BRANCH, dependsOn: ['a'] }] }));
  post('/v1/transactions', JSON.stringify({ mode: 'saga', concurrent: true, steps: [{ name: 'a', ...BASE_BRANCH, dependsOn: ['ghost'] }] }));
  post('/v1/transactions', JSON.stringify({ mode: 'xa', metadata: deepJson(2_000) }));
  post('/v1/transactions', JSON.stringify({ mode: 'saga', gid: existingGid, steps: [{ name: 'other', ...BASE_BRANCH }] }));
  post('/v1/transactions', JSON.stringify({ mode: 'tcc', unknownField: 1 }));
  post('/v1/transactions', JSON.stringify({ mode: 'tcc', metadata: { big: 'x'.repeat(1_100_000) } }));
  for (const raw of ['{', '{"mode":', 'null', '[]', '"tcc"', '{"mode":"tcc",}', '\u0000', 'mode=tcc']) post('/v1/transactions', raw);
  post('/v1/transactions', 'mode=tcc', 'application/x-www-form-urlencoded');
  post('/v1/transactions', '{"mode":"tcc"}', 'text/plain');

  // Add a branch / decide: bad gids in the path, and bad bodies for the existing transaction.
  const badGids = HOSTILE_STRINGS.filter((s) => s.trim() !== '').map(encodeURIComponent).concat(['no-such-gid', 'a'.repeat(129)]);
  for (const gid of badGids) {
    post(`/v1/transactions/${gid}/branches`, JSON.stringify(BASE_BRANCH));
    post(`/v1/transactions/${gid}/commit`, '{}');
    post(`/v1/transactions/${gid}/rollback`, '{}');
    list.push({ method: 'GET', path: `/v1/transactions/${gid}` });
    list.push({ method: 'GET', path: `/admin/transactions/${gid}` });
    post(`/admin/transactions/${gid}/retry`, '{}');
    post(`/admin/transactions/${gid}/rollback`, '{}');
  }
  for (const body of bodiesWithOneBadField(BASE_BRANCH, ['participant', 'action', 'payload', 'branchId'])) post(`/v1/transactions/${existingGid}/branches`, body);
  for (const value of WRONG_VALUES.filter((v) => v !== null && !VALID.wait(v))) {
    post(`/v1/transactions/${existingGid}/commit`, JSON.stringify({ wait: value }));
    post(`/v1/transactions/${existingGid}/rollback`, JSON.stringify({ wait: value }));
  }
  post(`/v1/transactions/${existingGid}/rollback`, JSON.stringify({ wait: false, extra: 1 }));
  post(`/v1/transactions/${existingGid}/commit`, JSON.stringify({ unknown: true }));

  // Participants.
  const participant = { name: 'p', transport: 'http', endpoint: 'http://127.0.0.1:1/tx', actions: [{ name: 'a', modes: ['tcc'] }] };
  for (const body of bodiesWithOneBadField(participant, ['name', 'transport', 'endpoint', 'actions'])) {
    // A valid name alone would register a participant: pair it with a bad field.
    post('/v1/participants', body);
  }
  for (const endpoint of ['file:///etc/passwd', 'ftp://x', 'javascript:alert(1)', 'http://', 'not a url']) post('/v1/participants', JSON.stringify({ ...participant, endpoint }));
  post('/v1/participants', JSON.stringify({ ...participant, actions: [{ name: 'a', modes: ['xa'] }] }));
  post('/v1/participants', JSON.stringify({ ...participant, transport: 'tcp', port: 70_000, host: 'x' }));

  // Admin list: every filter wrong.
  for (const [key, values] of Object.entries({
    status: ['lost', "' OR 1=1", '1'],
    mode: ['xa', '%27'],
    participant: ["'; --", 'x'.repeat(65)],
    attention: ['yes', '1'],
    from: ['yesterday', '2026-13-45'],
    to: ['tomorrow'],
    limit: ['0', '-1', '1000', 'ten', '1e9'],
    cursor: ['!!', 'bm90IGEgY3Vyc29y', "' OR 1=1 --"],
    surprise: ['1'],
  })) {
    for (const value of values) list.push({ method: 'GET', path: `/admin/transactions?${key}=${encodeURIComponent(value)}` });
  }
  for (const hostile of HOSTILE_STRINGS.filter((h) => h.trim() !== '')) {
    for (const key of ['status', 'mode', 'participant', 'from', 'cursor', 'limit']) {
      list.push({ method: 'GET', path: `/admin/transactions?${key}=${encodeURIComponent(hostile)}` });
    }
  }
  post('/v1/transactions', '{"mode":"tcc"}', 'application/json; charset=utf-16');
  for (const path of ['/no/such/route', '/v1', '/admin', '/v1/participants/x', '/admin/transactions/x/y']) list.push({ method: 'GET', path });
  list.push({ method: 'POST', path: '/v1/transactions/x/y/z', body: '{}', contentType: 'application/json' });
  return list;
}

async function snapshot(): Promise<string> {
  const client = new pg.Client({ connectionString: databases[0].url });
  await client.connect();
  try {
    const tx = await client.query('SELECT gid, status, reason, version, metadata FROM global_transactions ORDER BY gid');
    const branches = await client.query('SELECT gid, branch_id, status, attempts FROM branches ORDER BY gid, branch_id');
    const participants = await client.query('SELECT name, endpoint, actions FROM participants ORDER BY name');
    return JSON.stringify([tx.rows, branches.rows, participants.rows]);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  databases = await Promise.all(['bad_coord', 'bad_bank'].map((p) => createTestDatabase(p)));
  coord = await coordinator('bad-input-coordinator', databases[0].url, { LOG_LEVEL: 'warn' });
  await coord.start();
  bank = await accountService('bank', databases[1].url, coord.url);
  await bank.start();
  await openAccount(bank, 'a', 1_000);
  const client = new TransactionClient({ coordinatorUrl: coord.url });
  await client.begin({ mode: 'tcc', gid: 'existing', branches: [{ ...BASE_BRANCH }], wait: true });
  await client.begin({ mode: 'tcc', gid: 'open-one' });
});

afterAll(async () => {
  await Promise.all([bank?.process.kill(), coord?.process.kill()]);
  await Promise.all(databases.map((d) => d.drop()));
});

describe('bad input', () => {
  it('answers every malformed, oversized, wrongly typed or hostile request with a 4xx and a stable code, and changes nothing', async () => {
    const before = await snapshot();
    const all = [...probes('existing'), ...probes('open-one').filter((p) => p.path.includes('open-one'))];
    const codes = new Set<string>(Object.values(ErrorCode));
    const failures: string[] = [];
    let sent = 0;
    for (let i = 0; i < all.length; i += 20) {
      await Promise.all(
        all.slice(i, i + 20).map(async (probe) => {
          const response = await fetch(`${coord.url}${probe.path}`, {
            method: probe.method,
            headers: probe.contentType ? { 'content-type': probe.contentType } : {},
            body: probe.body,
          });
          sent++;
          const text = await response.text();
          let code: unknown;
          try {
            code = (JSON.parse(text) as { error?: unknown }).error;
          } catch {
            code = undefined;
          }
          const ok = response.status >= 400 && response.status < 500 && typeof code === 'string' && codes.has(code);
          if (!ok) failures.push(`${probe.method} ${probe.path.slice(0, 80)} ${probe.body?.slice(0, 80) ?? ''} -> ${response.status} ${text.slice(0, 120)}`);
        }),
      );
    }
    console.log(`bad-input suite: ${sent} requests sent, ${failures.length} without a 4xx and a stable code`);
    for (const failure of failures) console.log(`  ${failure}`);
    expect(sent).toBeGreaterThanOrEqual(1_000);
    expect(failures).toEqual([]);
    expect(await snapshot()).toBe(before);
  });
});
