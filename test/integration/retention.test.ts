/**
 * Retention against a real Postgres: the coordinator's job deletes finished transactions (with
 * their branches and events) past RETENTION_DAYS and never a transaction that is not terminal;
 * the SDK's job deletes barrier rows of branches whose every row is past barrierRetentionMs.
 * Rows are aged by moving their timestamps back, so no test waits on a clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SchedulerRegistry } from '@nestjs/schedule';
import { DataSource } from 'typeorm';
import type { GlobalStatus, Phase, PhaseCallBody } from '@nest-dtx/protocol';
import { BranchBarrier, type ParticipantModuleOptions } from '@nest-dtx/sdk';
import { typeormDataLayer } from '@nest-dtx/sdk/typeorm';
import { BarrierRetention } from '../../libs/sdk/src/participant/barrier-retention.js';
import { CoordinatorConfig, loadCoordinatorEnv } from '../../apps/coordinator/src/config/coordinator.config.js';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/database.module.js';
import { RetentionService } from '../../apps/coordinator/src/retention/retention.service.js';
import { RetentionStore } from '../../apps/coordinator/src/store/retention.store.js';
import { TransactionStore } from '../../apps/coordinator/src/store/transaction.store.js';
import { newTransferInput } from '../support/transactions.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const RETENTION_DAYS = 7;
/** Older than the retention age, and younger than it. */
const OLD_DAYS = 10;
const RECENT_DAYS = 1;

/** A RetentionStore that remembers what each of its statements deleted. */
class RecordingRetentionStore extends RetentionStore {
  readonly batches: number[] = [];
  override async deleteFinished(ageMs: number, limit: number): Promise<number> {
    const removed = await super.deleteFinished(ageMs, limit);
    this.batches.push(removed);
    return removed;
  }
}

/** A BarrierRetention that remembers what each of its statements deleted. */
class RecordingBarrierRetention extends BarrierRetention {
  readonly batches: number[] = [];
  override async deleteExpiredBatch(): Promise<number> {
    const removed = await super.deleteExpiredBatch();
    this.batches.push(removed);
    return removed;
  }
}

describe('RetentionService (coordinator)', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let transactions: TransactionStore;
  const sources: DataSource[] = [];

  async function openDataSource(): Promise<DataSource> {
    const source = new DataSource({ type: 'postgres', url: db.url, migrations: COORDINATOR_MIGRATIONS, extra: { max: 4 } });
    await source.initialize();
    sources.push(source);
    return source;
  }

  function retention(source: DataSource, env: Record<string, string> = {}): { service: RetentionService; store: RecordingRetentionStore; scheduler: SchedulerRegistry } {
    const config = new CoordinatorConfig(
      loadCoordinatorEnv({ RETENTION_DAYS: String(RETENTION_DAYS), RETENTION_BATCH_SIZE: '500', RETENTION_BATCH_PAUSE_MS: '0', ...env }),
    );
    const store = new RecordingRetentionStore(source);
    const scheduler = new SchedulerRegistry();
    return { service: new RetentionService(store, scheduler, config), store, scheduler };
  }

  const newTx = newTransferInput;

  /** A transaction begun through the real store, then put in `status` since `ageDays` days. */
  async function transactionIn(gid: string, status: GlobalStatus, ageDays: number): Promise<void> {
    await transactions.insert(newTx(gid), 5_000);
    await dataSource.query(
      `WITH g AS (
         UPDATE global_transactions SET status = $2::varchar, updated_at = now() - $3::int * interval '1 day',
                next_attempt_at = CASE WHEN $2::varchar IN ('committed', 'rolled_back') THEN NULL ELSE next_attempt_at END
         WHERE gid = $1 RETURNING gid)
       INSERT INTO transaction_events (gid, type, to_status) SELECT gid, 'status', $2::varchar FROM g`,
      [gid, status, ageDays],
    );
  }

  /** Many transactions at once, each with a branch and an event, for the batching tests. */
  async function manyTransactions(prefix: string, count: number, status: GlobalStatus, ageDays: number): Promise<void> {
    await dataSource.query(
      `WITH g AS (
         INSERT INTO global_transactions (gid, mode, status, request_hash, timeout_ms, deadline, updated_at)
         SELECT $1 || i, 'tcc', $3, 'h', 60000, now(), now() - $4::int * interval '1 day' FROM generate_series(1, $2::int) i
         RETURNING gid
       ), b AS (
         INSERT INTO branches (gid, branch_id, seq, participant, action, status) SELECT gid, 'b1', 1, 'bank', 'debit', 'committed' FROM g
       )
       INSERT INTO transaction_events (gid, type) SELECT gid, 'created' FROM g`,
      [prefix, count, status, ageDays],
    );
  }

  /** Rows left in each table for gids starting with `prefix`. */
  async function rowsOf(prefix: string): Promise<{ transactions: number; branches: number; events: number }> {
    const [row] = await dataSource.query<{ transactions: number; branches: number; events: number }[]>(
      `SELECT (SELECT count(*) FROM global_transactions WHERE starts_with(gid, $1))::int AS transactions,
              (SELECT count(*) FROM branches WHERE starts_with(gid, $1))::int AS branches,
              (SELECT count(*) FROM transaction_events WHERE starts_with(gid, $1))::int AS events`,
      [prefix],
    );
    return row;
  }

  beforeAll(async () => {
    db = await createTestDatabase('retention');
    dataSource = await openDataSource();
    // As the coordinator runs them (DatabaseModule): each migration in its own transaction.
    await dataSource.runMigrations({ transaction: 'each' });
    transactions = new TransactionStore(dataSource);
  });

  beforeEach(async () => {
    await dataSource.query(`TRUNCATE global_transactions, branches, transaction_events`);
  });

  afterAll(async () => {
    await Promise.all(sources.map((s) => s.destroy()));
    await db?.drop();
  });

  it('deletes old committed and rolled_back transactions with their branches and events, keeps recent ones', async () => {
    await transactionIn('old-committed', 'committed', OLD_DAYS);
    await transactionIn('old-rolled-back', 'rolled_back', OLD_DAYS);
    await transactionIn('recent-committed', 'committed', RECENT_DAYS);
    await transactionIn('recent-rolled-back', 'rolled_back', RECENT_DAYS);
    expect(await rowsOf('old-')).toEqual({ transactions: 2, branches: 4, events: 4 });

    const { service } = retention(dataSource);
    expect(await service.purgeExpired()).toBe(2);

    expect(await rowsOf('old-')).toEqual({ transactions: 0, branches: 0, events: 0 });
    expect(await rowsOf('recent-')).toEqual({ transactions: 2, branches: 4, events: 4 });
    expect((await transactions.load('recent-committed'))?.tx.status).toBe('committed');
  });

  it('never deletes a transaction that is not terminal, however old', async () => {
    for (const status of ['active', 'committing', 'rolling_back'] as const) await transactionIn(`undecided-${status}`, status, 10 * 365);

    const { service } = retention(dataSource);
    expect(await service.purgeExpired()).toBe(0);

    expect(await rowsOf('undecided-')).toEqual({ transactions: 3, branches: 6, events: 6 });
  });

  it('deletes in batches of at most RETENTION_BATCH_SIZE until none are left', async () => {
    await manyTransactions('bulk-', 1_234, 'committed', OLD_DAYS);
    await manyTransactions('keep-', 20, 'committing', OLD_DAYS);

    const { service, store } = retention(dataSource, { RETENTION_BATCH_SIZE: '500' });
    expect(await service.purgeExpired()).toBe(1_234);

    // Two full batches, the rest, and nothing more: the short batch ends the pass.
    expect(store.batches).toEqual([500, 500, 234]);
    expect(await rowsOf('bulk-')).toEqual({ transactions: 0, branches: 0, events: 0 });
    expect(await rowsOf('keep-')).toEqual({ transactions: 20, branches: 20, events: 20 });
  });

  it('deletes no more than the limit in one statement', async () => {
    await manyTransactions('limit-', 30, 'rolled_back', OLD_DAYS);

    expect(await new RetentionStore(dataSource).deleteFinished(RETENTION_DAYS * DAY_MS, 10)).toBe(10);

    expect(await rowsOf('limit-')).toEqual({ transactions: 20, branches: 20, events: 20 });
  });

  it('lets two instances run at once: no error, every expired transaction deleted exactly once', async () => {
    await manyTransactions('shared-', 3_000, 'committed', OLD_DAYS);
    const first = retention(await openDataSource(), { RETENTION_BATCH_SIZE: '100' });
    const second = retention(await openDataSource(), { RETENTION_BATCH_SIZE: '100' });

    const [byFirst, bySecond] = await Promise.all([first.service.purgeExpired(), second.service.purgeExpired()]);

    // Each statement reports what it deleted itself: a row deleted twice would count twice.
    expect(byFirst + bySecond).toBe(3_000);
    expect([...first.store.batches, ...second.store.batches].every((n) => n <= 100)).toBe(true);
    expect(await rowsOf('shared-')).toEqual({ transactions: 0, branches: 0, events: 0 });
  });

  it('deletes through the partial index on finished transactions', async () => {
    const plan = await dataSource.transaction(async (manager) => {
      // On a near-empty table a sequential scan is cheaper; rule it out to see whether the index fits the query.
      await manager.query(`SET LOCAL enable_seqscan = off`);
      return manager.query<{ 'QUERY PLAN': string }[]>(
        `EXPLAIN SELECT gid FROM global_transactions
         WHERE status IN ('committed', 'rolled_back') AND updated_at < now() - interval '7 days'
         ORDER BY updated_at, gid LIMIT 500 FOR UPDATE SKIP LOCKED`,
      );
    });
    expect(plan.map((line) => line['QUERY PLAN']).join('\n')).toContain('global_transactions_finished_idx');
  });

  it('deletes nothing when RETENTION_DAYS=0, and schedules no job', async () => {
    await manyTransactions('ancient-', 5, 'committed', 10 * 365);

    const { service, scheduler } = retention(dataSource, { RETENTION_DAYS: '0' });
    service.onApplicationBootstrap();
    expect(scheduler.doesExist('interval', RetentionService.JOB_NAME)).toBe(false);
    expect(await service.purgeExpired()).toBe(0);

    expect((await rowsOf('ancient-')).transactions).toBe(5);
  });

  it('registers its interval with the scheduler at bootstrap and removes it at shutdown', async () => {
    const { service, scheduler } = retention(dataSource, { RETENTION_INTERVAL_MS: '3600000' });
    service.onApplicationBootstrap();
    expect(scheduler.doesExist('interval', RetentionService.JOB_NAME)).toBe(true);
    await service.onApplicationShutdown();
    expect(scheduler.doesExist('interval', RetentionService.JOB_NAME)).toBe(false);
  });
});

describe('BarrierRetention (SDK)', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let barrier: BranchBarrier;
  const extraSources: DataSource[] = [];

  const options = (over: Partial<ParticipantModuleOptions> = {}): ParticipantModuleOptions => ({
    name: 'retention-test',
    coordinatorUrl: 'http://127.0.0.1:1',
    register: false,
    barrierRetentionMs: RETENTION_DAYS * DAY_MS,
    ...over,
  });

  const call = (gid: string, phase: Phase): PhaseCallBody => ({ gid, branchId: 'b1', mode: 'tcc', action: 'pay', phase, payload: {} });
  const run = (gid: string, phase: Phase) => barrier.run(call(gid, phase), () => Promise.resolve({ ran: phase }));

  /** Moves the barrier rows of `gid` (only those of `phase` when given) `days` days back. */
  async function age(gid: string, days: number, phase?: 'phase1' | 'commit' | 'rollback'): Promise<void> {
    await dataSource.query(
      `UPDATE dtx_barrier SET created_at = now() - $2::int * interval '1 day' WHERE gid = $1 AND ($3::text IS NULL OR phase = $3)`,
      [gid, days, phase ?? null],
    );
  }

  async function barrierRows(prefix: string): Promise<string[]> {
    const rows: { gid: string; phase: string }[] = await dataSource.query(
      `SELECT gid, phase FROM dtx_barrier WHERE starts_with(gid, $1) ORDER BY gid, phase`,
      [prefix],
    );
    return rows.map((r) => `${r.gid}/${r.phase}`);
  }

  /** Many finished branches (a phase-1 and a commit row each), `days` days old. */
  async function manyBranches(prefix: string, count: number, days: number): Promise<void> {
    await dataSource.query(
      `INSERT INTO dtx_barrier (gid, branch_id, phase, origin, created_at)
       SELECT $1 || i, 'b1', p, p, now() - $3::int * interval '1 day'
       FROM generate_series(1, $2::int) i CROSS JOIN (VALUES ('phase1'), ('commit')) AS phases(p)`,
      [prefix, count, days],
    );
  }

  beforeAll(async () => {
    ({ db, dataSource } = await participantDatabase('barrier_retention', []));
    barrier = new BranchBarrier(typeormDataLayer(dataSource));
  });

  beforeEach(async () => {
    await dataSource.query(`TRUNCATE dtx_barrier`);
  });

  afterAll(async () => {
    await Promise.all(extraSources.map((s) => s.destroy()));
    await dataSource?.destroy();
    await db?.drop();
  });

  it('deletes the rows of branches whose every row is old, keeps recent ones', async () => {
    await run('old-confirmed', 'try');
    await run('old-confirmed', 'confirm');
    await age('old-confirmed', OLD_DAYS);
    await run('old-null-compensated', 'cancel'); // leaves the anti-hanging marker in the phase-1 slot
    await age('old-null-compensated', OLD_DAYS);
    await run('recent-confirmed', 'try');
    await run('recent-confirmed', 'confirm');
    await age('recent-confirmed', RECENT_DAYS);

    expect(await new BarrierRetention(typeormDataLayer(dataSource), options()).purgeExpired()).toBe(4);

    expect(await barrierRows('old-')).toEqual([]);
    expect(await barrierRows('recent-')).toEqual(['recent-confirmed/commit', 'recent-confirmed/phase1']);
  });

  it('keeps an old phase-1 row while its branch has a recent row: a branch goes whole or not at all', async () => {
    await run('slow-cancel', 'try');
    await age('slow-cancel', OLD_DAYS, 'phase1');
    await run('slow-cancel', 'cancel');

    expect(await new BarrierRetention(typeormDataLayer(dataSource), options()).purgeExpired()).toBe(0);

    expect(await barrierRows('slow-')).toEqual(['slow-cancel/phase1', 'slow-cancel/rollback']);
    // The cancel stays a duplicate (not a null compensation) and a late try still refuses.
    expect(await run('slow-cancel', 'cancel')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await run('slow-cancel', 'try')).toMatchObject({ kind: 'ok', duplicate: true });
  });

  it('deletes in batches of at most barrierRetentionBatchSize until none are left', async () => {
    await manyBranches('bulk-', 120, OLD_DAYS);
    await manyBranches('fresh-', 3, RECENT_DAYS);

    const retention = new RecordingBarrierRetention(typeormDataLayer(dataSource), options({ barrierRetentionBatchSize: 100 }));
    expect(await retention.purgeExpired()).toBe(240);

    expect(retention.batches).toEqual([100, 100, 40]);
    expect(await barrierRows('bulk-')).toEqual([]);
    expect(await barrierRows('fresh-')).toHaveLength(6);
  });

  it('lets two participant instances run at once: every expired row deleted exactly once', async () => {
    await manyBranches('shared-', 1_000, OLD_DAYS);
    const secondSource = new DataSource({ type: 'postgres', url: db.url, extra: { max: 2 } });
    await secondSource.initialize();
    extraSources.push(secondSource);
    const first = new RecordingBarrierRetention(typeormDataLayer(dataSource), options({ barrierRetentionBatchSize: 100 }));
    const second = new RecordingBarrierRetention(typeormDataLayer(secondSource), options({ barrierRetentionBatchSize: 100 }));

    const [byFirst, bySecond] = await Promise.all([first.purgeExpired(), second.purgeExpired()]);

    expect(byFirst + bySecond).toBe(2_000);
    expect([...first.batches, ...second.batches].every((n) => n <= 100)).toBe(true);
    expect(await barrierRows('shared-')).toEqual([]);
  });

  it('deletes nothing when barrierRetentionMs is 0', async () => {
    await manyBranches('kept-', 5, 10 * 365);

    expect(await new BarrierRetention(typeormDataLayer(dataSource), options({ barrierRetentionMs: 0 })).purgeExpired()).toBe(0);

    expect(await barrierRows('kept-')).toHaveLength(10);
  });
});
