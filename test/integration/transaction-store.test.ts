/** The coordinator's transaction log against a real Postgres: one-statement writes, compare-and-set, claims. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/database.module.js';
import { TransactionStore, type StoreOptions, type TxChange } from '../../apps/coordinator/src/store/transaction.store.js';
import { newTransferInput } from '../support/transactions.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let db: TestDatabase;
const sources: DataSource[] = [];

async function openStore(options: StoreOptions = {}): Promise<{ store: TransactionStore; dataSource: DataSource }> {
  const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: COORDINATOR_MIGRATIONS, extra: { max: 10 } });
  await dataSource.initialize();
  sources.push(dataSource);
  return { store: new TransactionStore(dataSource, options), dataSource };
}

const newTx = newTransferInput;

const decide = (over: Partial<TxChange> = {}): TxChange => ({
  status: 'committing',
  reason: null,
  nextAttemptInMs: 5_000,
  lease: { owner: 'me', ms: 5_000 },
  branches: [
    { branchId: 'b1', status: 'prepared', calls: 1, result: { ok: 1 } },
    { branchId: 'b2', status: 'prepared', calls: 1, lastError: 'slow' },
  ],
  events: [{ type: 'status', from: 'active', to: 'committing' }],
  ...over,
});

let store: TransactionStore;
let dataSource: DataSource;

beforeAll(async () => {
  db = await createTestDatabase('store');
  ({ store, dataSource } = await openStore());
  await dataSource.runMigrations();
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.destroy()));
  await db?.drop();
});

describe('TransactionStore', () => {
  it('inserts a transaction with its pending branches and history; the same gid again inserts nothing', async () => {
    const inserted = await store.insert(newTx('ins-1'), 5_000);
    expect(inserted?.tx).toMatchObject({ gid: 'ins-1', status: 'active', version: 1, metadata: { order: 'ins-1' } });
    expect(inserted!.tx.deadline.getTime() - inserted!.tx.createdAt.getTime()).toBe(60_000);
    expect(inserted?.branches.map((b) => [b.branchId, b.status, b.seq])).toEqual([
      ['b1', 'pending', 1],
      ['b2', 'pending', 2],
    ]);
    expect(await store.insert(newTx('ins-1', { metadata: { other: true } }), 5_000)).toBeNull();
    expect((await store.load('ins-1'))?.tx.metadata).toEqual({ order: 'ins-1' });
    expect((await store.events('ins-1')).map((e) => e.type)).toEqual(['created']);
  });

  it('writes nothing at all when one part of the statement fails (a branchId twice)', async () => {
    const twice = newTx('atomic-1', { branches: [newTx('x').branches[0], newTx('x').branches[0]] });
    await expect(store.insert(twice, 5_000)).rejects.toThrow();
    expect(await store.load('atomic-1')).toBeNull();
    expect(await store.events('atomic-1')).toEqual([]);
  });

  it('apply is a compare-and-set: the current version moves the transaction, a stale one changes nothing', async () => {
    const inserted = (await store.insert(newTx('cas-1'), 5_000))!;
    const saved = await store.apply('cas-1', 1, decide());
    expect(saved?.tx).toMatchObject({ status: 'committing', version: 2, leaseOwner: 'me' });
    expect(saved?.branches.map((b) => [b.branchId, b.status, b.attempts, b.result, b.lastError])).toEqual([
      ['b1', 'prepared', 1, { ok: 1 }, null],
      ['b2', 'prepared', 1, null, 'slow'],
    ]);
    const eventsBefore = (await store.events('cas-1')).length;
    expect(await store.apply('cas-1', inserted.tx.version, decide({ status: 'rolling_back', reason: 'client' }))).toBeNull();
    const after = await store.load('cas-1');
    expect(after?.tx).toMatchObject({ status: 'committing', version: 2 });
    expect(await store.events('cas-1')).toHaveLength(eventsBefore);
  });

  it('a terminal write clears the schedule and the lease', async () => {
    await store.insert(newTx('term-1'), 5_000);
    await store.apply('term-1', 1, decide());
    const done = await store.apply('term-1', 2, decide({ status: 'committed', nextAttemptInMs: null, lease: null, branches: [], events: [] }));
    expect(done?.tx).toMatchObject({ status: 'committed', nextAttemptAt: null, leaseOwner: null, leaseUntil: null });
  });

  it('insertBranch adds to an active transaction and bumps its version, so a decision read before it fails', async () => {
    await store.insert(newTx('add-1', { oneShot: false, branches: [] }), 5_000);
    const branch = await store.insertBranch('add-1', { branchId: 'x', participant: 'bank', action: 'debit', payload: {} }, []);
    expect(branch).toMatchObject({ branchId: 'x', status: 'pending', seq: 1 });
    expect(await store.apply('add-1', 1, decide({ branches: [] }))).toBeNull();
    expect(await store.insertBranch('add-1', { branchId: 'x', participant: 'bank', action: 'debit', payload: {} }, [])).toBeNull();
    await store.apply('add-1', 2, decide({ status: 'rolling_back', reason: 'client', branches: [] }));
    expect(await store.insertBranch('add-1', { branchId: 'y', participant: 'bank', action: 'debit', payload: {} }, [])).toBeNull();
  });

  it('insertBranch refuses the branch past maxBranches; loadForAdd reads statuses and the one branch, no other payload', async () => {
    await store.insert(newTx('lim-1', { oneShot: false, branches: [], ownerKeyDigest: Buffer.alloc(32, 7) }), 5_000);
    const add = (id: string) => store.insertBranch('lim-1', { branchId: id, participant: 'bank', action: 'debit', payload: { id } }, [], 2);
    expect(await add('x')).not.toBeNull();
    expect(await add('y')).not.toBeNull();
    expect(await add('z')).toBeNull();
    await store.recordPhase1('lim-1', 'x', 'prepared', { result: { big: 'x' } }, []);
    const forAdd = await store.loadForAdd('lim-1', 'y');
    expect(forAdd?.tx.ownerKeyDigest?.equals(Buffer.alloc(32, 7))).toBe(true);
    expect(forAdd?.branches).toEqual([
      { branchId: 'x', status: 'prepared' },
      { branchId: 'y', status: 'pending' },
    ]);
    expect(forAdd?.existing).toMatchObject({ branchId: 'y', payload: { id: 'y' } });
    expect((await store.loadForAdd('lim-1', 'new'))?.existing).toBeNull();
    expect(await store.loadForAdd('no-such-gid', 'x')).toBeNull();
  });

  it('recordPhase1 moves only a pending branch, and always counts the call', async () => {
    await store.insert(newTx('p1-1', { oneShot: false, branches: [] }), 5_000);
    await store.insertBranch('p1-1', { branchId: 'x', participant: 'bank', action: 'debit', payload: {} }, []);
    expect(await store.recordPhase1('p1-1', 'x', 'prepared', { result: { held: 1 } }, [])).toMatchObject({ status: 'prepared', attempts: 1 });
    expect(await store.recordPhase1('p1-1', 'x', 'failed', { lastError: 'late' }, [])).toMatchObject({ status: 'prepared', attempts: 2 });
  });

  it('a workflow keeps its host, input and commit result; its steps their kind, recorded status and result; each step puts off its resume, never past the deadline', async () => {
    const inserted = (await store.insert(newTx('wf-1', { mode: 'workflow', branches: [], workflow: { participant: 'orders', name: 'placeOrder' }, input: { orderId: 7 } }), 5_000))!;
    expect(inserted.tx).toMatchObject({ mode: 'workflow', workflow: { participant: 'orders', name: 'placeOrder' }, input: { orderId: 7 }, result: null });
    const tcc = await store.insertBranch('wf-1', { branchId: 's1', participant: 'stock', action: 'reserve', payload: { sku: 'a' }, kind: 'tcc' }, [], 100, 30_000);
    expect(tcc).toMatchObject({ branchId: 's1', kind: 'tcc', status: 'pending', seq: 1, waitingSince: null });
    const compensate = { participant: 'numbers', action: 'release', payload: { n: 4 } };
    const local = await store.insertBranch('wf-1', { branchId: 's2', participant: 'orders', action: 'placeOrder', payload: {}, kind: 'local', compensate, status: 'committed', result: { n: 4 } }, [], 100, 30_000);
    expect(local).toMatchObject({ branchId: 's2', kind: 'local', compensate, status: 'committed', result: { n: 4 }, seq: 2 });
    expect(tcc?.compensate).toBeNull();
    const afterSteps = (await store.load('wf-1'))!;
    const resumeInMs = afterSteps.tx.nextAttemptAt!.getTime() - afterSteps.tx.updatedAt.getTime();
    expect(resumeInMs).toBeGreaterThan(29_000);
    expect(resumeInMs).toBeLessThanOrEqual(30_000);
    // A resume interval past the deadline: due at the deadline.
    await store.insertBranch('wf-1', { branchId: 's3', participant: 'ship', action: 'ship', payload: {}, kind: 'saga' }, [], 100, 10 * 60_000);
    const capped = (await store.load('wf-1'))!;
    expect(capped.tx.nextAttemptAt!.getTime()).toBe(capped.tx.deadline.getTime());
    // A branch of another mode has no kind; a begin's result stays until a commit carries one.
    expect((await store.insert(newTx('wf-plain'), 5_000))!.branches.map((b) => b.kind)).toEqual([null, null]);
    const committed = await store.apply('wf-1', capped.tx.version, { ...decide({ branches: [] }), result: { shipped: true } });
    expect(committed?.tx.result).toEqual({ shipped: true });
    const again = await store.apply('wf-1', committed!.tx.version, decide({ branches: [], status: 'committed', nextAttemptInMs: null, lease: null }));
    expect(again?.tx.result).toEqual({ shipped: true });
  });

  it('insertBranch writes the held answers of earlier steps in its own statement, as recordPhase1 would, and only when the step goes in', async () => {
    await store.insert(newTx('held-1', { mode: 'workflow', branches: [], workflow: { participant: 'orders', name: 'flow' } }), 5_000);
    const step = (id: string) => ({ branchId: id, participant: 'bank', action: 'debit', payload: {}, kind: 'tcc' as const });
    await store.insertBranch('held-1', step('s1'), [{ type: 'branch_added', branchId: 's1' }]);
    await store.insertBranch('held-1', step('s2'), [{ type: 'branch_added', branchId: 's2' }]);
    const { result: s3, commits } = await writeCommits(() =>
      store.insertBranch('held-1', step('s3'), [{ type: 'call', branchId: 's1' }, { type: 'call', branchId: 's2' }, { type: 'branch_added', branchId: 's3' }], 100, null, [
        { branchId: 's1', status: 'prepared', result: { reserved: 1 } },
        { branchId: 's2', status: 'failed', lastError: { reason: 'no funds' } },
      ]),
    );
    expect(s3).toMatchObject({ branchId: 's3', status: 'pending', seq: 3 });
    expect(commits).toBe(1);
    const after = (await store.load('held-1'))!;
    expect(after.branches.map((b) => [b.branchId, b.status, b.attempts, b.result, b.lastError])).toEqual([
      ['s1', 'prepared', 1, { reserved: 1 }, null],
      ['s2', 'failed', 1, null, { reason: 'no funds' }],
      ['s3', 'pending', 0, null, null],
    ]);
    expect((await store.events('held-1')).map((e) => `${e.type} ${e.branchId}`)).toEqual(['created null', 'branch_added s1', 'branch_added s2', 'call s1', 'call s2', 'branch_added s3']);
    // In a compare-and-set, a held answer (ifPending) moves only a pending branch: a later state stays.
    const decided = await store.apply('held-1', after.tx.version, decide({
      status: 'rolling_back', reason: 'client',
      branches: [{ branchId: 's1', status: 'rolled_back', calls: 1 }, { branchId: 's3', status: 'prepared', ifPending: true, calls: 1, result: { late: true } }],
    }));
    const late = await store.apply('held-1', decided!.tx.version, decide({
      status: 'rolling_back', reason: 'client', branches: [{ branchId: 's1', status: 'prepared', ifPending: true, calls: 1 }],
    }));
    expect(late!.branches.map((b) => [b.branchId, b.status, b.attempts])).toEqual([['s1', 'rolled_back', 3]]);
    expect(decided!.branches.find((b) => b.branchId === 's3')).toMatchObject({ status: 'prepared', result: { late: true } });
    // Not inserted (the step exists): the answer is not written either.
    expect(await store.insertBranch('held-1', step('s3'), [], 100, null, [{ branchId: 's3', status: 'prepared', result: null }])).toBeNull();
    expect((await store.load('held-1'))!.branches[2]).toMatchObject({ status: 'prepared', attempts: 1 });
  });

  it('a branch answering ongoing (202) is waiting from its first such answer until a final one', async () => {
    await store.insert(newTx('wait-1'), 5_000);
    const first = await store.recordPhase1('wait-1', 'b1', 'pending', { waiting: true }, []);
    expect(first?.waitingSince).toBeInstanceOf(Date);
    await new Promise((r) => setTimeout(r, 20));
    const second = await store.recordPhase1('wait-1', 'b1', 'pending', { waiting: true }, []);
    expect(second?.waitingSince?.getTime()).toBe(first!.waitingSince!.getTime());
    expect(second?.attempts).toBe(2);
    const final = await store.recordPhase1('wait-1', 'b1', 'prepared', { result: { ok: true }, waiting: false }, []);
    expect(final).toMatchObject({ status: 'prepared', waitingSince: null, result: { ok: true } });

    const loaded = (await store.load('wait-1'))!;
    const phase2 = await store.apply('wait-1', loaded.tx.version, decide({ branches: [{ branchId: 'b2', calls: 1, waiting: true }] }));
    const waitingSince = phase2!.branches.find((b) => b.branchId === 'b2')!.waitingSince;
    expect(waitingSince).toBeInstanceOf(Date);
    // A change that says nothing of waiting leaves it; a final answer clears it.
    const untouched = await store.apply('wait-1', phase2!.tx.version, decide({ branches: [{ branchId: 'b2', calls: 1 }] }));
    expect(untouched!.branches.find((b) => b.branchId === 'b2')!.waitingSince?.getTime()).toBe(waitingSince!.getTime());
    const done = await store.apply('wait-1', untouched!.tx.version, decide({ branches: [{ branchId: 'b2', status: 'committed', calls: 1, waiting: false }] }));
    expect(done!.branches.find((b) => b.branchId === 'b2')!.waitingSince).toBeNull();
  });

  it('keeps the history in order, oldest first', async () => {
    await store.insert(newTx('hist-1', { events: [{ type: 'created' }, { type: 'branch_added', branchId: 'b1' }, { type: 'branch_added', branchId: 'b2' }] }), 5_000);
    await store.apply('hist-1', 1, decide());
    expect((await store.events('hist-1')).map((e) => `${e.type}${e.branchId ? `:${e.branchId}` : ''}`)).toEqual([
      'created',
      'branch_added:b1',
      'branch_added:b2',
      'status',
    ]);
  });
});

/** Write transactions Postgres began (its transaction-id counter, which a read does not move). */
async function writeCommits<T>(work: () => Promise<T>): Promise<{ result: T; commits: number }> {
  const xmax = async () => Number((await dataSource.query(`SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x`))[0].x);
  const before = await xmax();
  const result = await work();
  return { result, commits: (await xmax()) - before };
}

describe('group commit', () => {
  it('concurrent writes of different transactions share statements and commits; each caller learns its own outcome', async () => {
    const gids = Array.from({ length: 60 }, (_, i) => `group-${i}`);
    const inserted = await writeCommits(() => Promise.all(gids.map((gid) => store.insert(newTx(gid), 5_000))));
    expect(inserted.result.every((r) => r !== null)).toBe(true);
    // 60 inserts in at most a few batches (2 may run at once): far fewer commits than writes.
    expect(inserted.commits).toBeLessThanOrEqual(10);

    // Every even one sends its current version, every odd one a stale one: same batches, separate answers.
    const applied = await writeCommits(() => Promise.all(gids.map((gid, i) => store.apply(gid, i % 2 === 0 ? 1 : 7, decide()))));
    expect(applied.result.map((r) => r !== null)).toEqual(gids.map((_, i) => i % 2 === 0));
    expect(applied.commits).toBeLessThanOrEqual(10);
    const loaded = await store.loadMany(gids);
    expect(loaded.map((l) => l.tx.status)).toEqual(gids.map((_, i) => (i % 2 === 0 ? 'committing' : 'active')));
    expect(loaded.filter((l) => l.tx.status === 'committing').every((l) => l.branches.every((b) => b.status === 'prepared'))).toBe(true);
    expect((await store.events('group-1')).map((e) => e.type)).toEqual(['created']);
    expect((await store.events('group-0')).map((e) => e.type)).toEqual(['created', 'status']);
  });

  it('a batch of every kind of write at once gives each caller its own row', async () => {
    await store.insert(newTx('mix-apply'), 5_000);
    await store.insert(newTx('mix-branch', { oneShot: false, branches: [] }), 5_000);
    await store.insert(newTx('mix-p1', { oneShot: false, branches: [] }), 5_000);
    await store.insertBranch('mix-p1', { branchId: 'x', participant: 'bank', action: 'debit', payload: {} }, []);
    // One statement at a time: the first write goes alone, the four that arrive meanwhile share the next.
    const { store: serial } = await openStore({ writeConcurrency: 1 });
    const { result, commits } = await writeCommits(() =>
      Promise.all([
        serial.insert(newTx('mix-insert'), 5_000),
        serial.apply('mix-apply', 1, decide()),
        serial.insertBranch('mix-branch', { branchId: 'y', participant: 'bank', action: 'credit', payload: { n: 1 } }, [{ type: 'branch_added', branchId: 'y' }]),
        serial.recordPhase1('mix-p1', 'x', 'prepared', { result: { held: 2 } }, [{ type: 'call', branchId: 'x' }]),
        serial.insert(newTx('mix-insert-2'), 5_000),
      ]),
    );
    expect(serial.stats).toEqual({ batches: 2, operations: 5 });
    const [inserted, applied, branch, phase1, inserted2] = result;
    expect(inserted?.tx.gid).toBe('mix-insert');
    expect(inserted?.branches.map((b) => b.branchId)).toEqual(['b1', 'b2']);
    expect(applied?.tx).toMatchObject({ gid: 'mix-apply', status: 'committing', version: 2 });
    expect(branch).toMatchObject({ gid: 'mix-branch', branchId: 'y', status: 'pending', payload: { n: 1 } });
    expect(phase1).toMatchObject({ gid: 'mix-p1', branchId: 'x', status: 'prepared', result: { held: 2 } });
    expect(inserted2?.tx.gid).toBe('mix-insert-2');
    expect(commits).toBeLessThanOrEqual(2);
    expect((await store.events('mix-branch')).map((e) => e.type)).toEqual(['created', 'branch_added']);
    expect((await store.events('mix-p1')).map((e) => e.type)).toEqual(['created', 'call']);
  });

  it('two writes of one transaction never share a batch: the second sees the first', async () => {
    await store.insert(newTx('same-1'), 5_000);
    const [first, second] = await Promise.all([store.apply('same-1', 1, decide()), store.apply('same-1', 1, decide({ status: 'rolling_back', reason: 'client' }))]);
    expect(first?.tx.status).toBe('committing');
    expect(second).toBeNull();
    expect((await store.load('same-1'))?.tx).toMatchObject({ status: 'committing', version: 2 });
  });

  it('a write that fails in a shared batch fails alone', async () => {
    const twice = newTx('bad-in-batch', { branches: [newTx('x').branches[0], newTx('x').branches[0]] });
    const [good, bad, alsoGood] = await Promise.allSettled([
      store.insert(newTx('good-in-batch-1'), 5_000),
      store.insert(twice, 5_000),
      store.insert(newTx('good-in-batch-2'), 5_000),
    ]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    expect(alsoGood.status).toBe('fulfilled');
    expect(await store.load('bad-in-batch')).toBeNull();
    expect((await store.loadMany(['good-in-batch-1', 'good-in-batch-2'])).map((l) => l.tx.gid)).toEqual(['good-in-batch-1', 'good-in-batch-2']);
  });
});

describe('recovery claims', () => {
  const due = async (prefix: string, count: number) => {
    for (let i = 0; i < count; i++) await store.insert(newTx(`${prefix}-${i}`, { timeoutMs: 60_000, firstAttemptInMs: 60_000 }), 5_000);
    await dataSource.query(`UPDATE global_transactions SET next_attempt_at = now() - interval '1 second' WHERE gid LIKE $1`, [`${prefix}-%`]);
  };

  it('two instances racing for 200 due transactions claim disjoint sets that cover them all', async () => {
    await due('race', 200);
    const [a, b] = await Promise.all([openStore(), openStore()]);
    const claims = { a: [] as string[], b: [] as string[] };
    const drain = async (worker: 'a' | 'b', s: TransactionStore) => {
      for (;;) {
        const batch = await s.claimDue(`worker-${worker}`, 30_000, 25);
        if (batch.length === 0) return;
        claims[worker].push(...batch.filter((t) => t.tx.gid.startsWith('race-')).map((t) => t.tx.gid));
      }
    };
    await Promise.all([drain('a', a.store), drain('b', b.store)]);
    const all = [...claims.a, ...claims.b];
    expect(new Set(all).size).toBe(all.length);
    expect(new Set(all).size).toBe(200);
    expect(claims.a.length).toBeGreaterThan(0);
    expect(claims.b.length).toBeGreaterThan(0);
    const owners: { lease_owner: string; n: string }[] = await dataSource.query(
      `SELECT lease_owner, count(*) AS n FROM global_transactions WHERE gid LIKE 'race-%' AND version = 2 GROUP BY 1 ORDER BY 1`,
    );
    expect(owners.map((o) => [o.lease_owner, Number(o.n)])).toEqual([
      ['worker-a', claims.a.length],
      ['worker-b', claims.b.length],
    ]);
  });

  it('a claimed row is not claimed again during its lease; after it, another instance takes it and fences the first', async () => {
    await due('lease', 1);
    const [first] = await store.claimDue('first', 300, 10).then((rows) => rows.filter((r) => r.tx.gid === 'lease-0'));
    expect(first).toBeDefined();
    expect((await store.claimDue('second', 300, 10)).some((r) => r.tx.gid === 'lease-0')).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    const [second] = (await store.claimDue('second', 300, 10)).filter((r) => r.tx.gid === 'lease-0');
    expect(second.tx.leaseOwner).toBe('second');
    // The claim's own now(): its lease ends LEASE_MS after it, in Postgres's time.
    expect(second.claimedAt).toBeInstanceOf(Date);
    expect(second.tx.leaseUntil!.getTime() - second.claimedAt!.getTime()).toBe(300);
    expect(second.claimedAt!.getTime()).toBeGreaterThan(first.claimedAt!.getTime() + 300);
    expect(await store.apply('lease-0', first.tx.version, decide({ status: 'rolling_back', reason: 'timeout', branches: [] }))).toBeNull();
    expect(await store.apply('lease-0', second.tx.version, decide({ status: 'rolling_back', reason: 'timeout', branches: [] }))).not.toBeNull();
  });

  it('never claims terminal transactions or transactions not yet due', async () => {
    await store.insert(newTx('future-0'), 5_000);
    await due('terminal', 1);
    await store.apply('terminal-0', 1, decide({ status: 'committing' }));
    await store.apply('terminal-0', 2, decide({ status: 'committed', nextAttemptInMs: null, lease: null, branches: [], events: [] }));
    const claimed = (await store.claimDue('anyone', 1_000, 1_000)).map((r) => r.tx.gid);
    expect(claimed).not.toContain('future-0');
    expect(claimed).not.toContain('terminal-0');
  });
});

describe('TransactionStore.makeDue (the operator\'s retry, through TransactionWriter.makeDue)', () => {
  it('leaves a transaction under a live lease to its holder, makes it due once the lease ran out, and refuses what has nothing to retry', async () => {
    await store.insert(newTx('retry-1'), 5_000);
    const active = (await store.load('retry-1'))!;
    // Decided, with this instance's lease for 30 s: being driven now.
    const decided = await store.apply('retry-1', active.tx.version, decide({ lease: { owner: 'holder', ms: 30_000 }, nextAttemptInMs: 30_000 }));
    expect(decided).not.toBeNull();
    const version = decided!.tx.version;

    expect(await store.makeDue('retry-1')).toEqual({ outcome: 'leased' });
    const untouched = (await store.load('retry-1'))!.tx;
    // Not fenced off in the database alone: the holder's in-memory lease and the row still agree.
    expect(untouched).toMatchObject({ version, leaseOwner: 'holder' });
    expect((await store.events('retry-1')).map((e) => e.type)).not.toContain('admin_retry');

    await dataSource.query(`UPDATE global_transactions SET lease_until = now() - interval '1 second' WHERE gid = $1`, ['retry-1']);
    expect(await store.makeDue('retry-1')).toEqual({ outcome: 'due', status: 'committing' });
    expect((await store.load('retry-1'))!.tx).toMatchObject({ version: version + 1, leaseOwner: null });
    expect((await store.events('retry-1')).map((e) => e.type)).toContain('admin_retry');

    await store.insert(newTx('retry-2'), 5_000);
    expect(await store.makeDue('retry-2')).toEqual({ outcome: 'not_retryable' });
  });
});
