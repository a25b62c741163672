/**
 * BranchBarrier against a real Postgres (PROTOCOL.md 5.4): idempotency, null compensation and
 * anti-hanging, for every phase family, including concurrent calls for one branch. The business
 * callbacks write into a `ledger` table through the EntityManager they receive, so each test can
 * count how many times business logic really took effect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource, type EntityManager } from 'typeorm';
import type { Json, Mode, Phase, PhaseCallBody } from '@app/protocol';
import { BranchBarrier, BusinessFailure, CreateDtxBarrier1763800000100, queryRows, type BarrierOutcome } from '@app/sdk';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let db: TestDatabase;
let dataSource: DataSource;
let barrier: BranchBarrier;

const BRANCH = 'b1';

function call(gid: string, phase: Phase, mode: Mode = 'tcc', branchId = BRANCH): PhaseCallBody {
  return { gid, branchId, mode, action: 'debit', phase, payload: { amount: 10 } };
}

/** Business logic that leaves one ledger row per run and answers with that row's id. */
function record(call: PhaseCallBody, amount = 10) {
  return async (manager: EntityManager): Promise<Json> => {
    const [row] = await queryRows<{ id: number }>(
      manager,
      `INSERT INTO ledger (gid, branch_id, phase, amount) VALUES ($1, $2, $3, $4) RETURNING id`,
      [call.gid, call.branchId, call.phase, amount],
    );
    return { ledgerId: row.id, phase: call.phase, amount, tags: ['a', 'b'], nested: { ok: true } };
  };
}

/** Runs one phase through the barrier with the recording business callback. */
function run(gid: string, phase: Phase, mode: Mode = 'tcc', branchId = BRANCH): Promise<BarrierOutcome> {
  const body = call(gid, phase, mode, branchId);
  return barrier.run(body, record(body));
}

/** Phases whose business took effect for a gid, in the order they did. */
async function effects(gid: string): Promise<string[]> {
  const rows = await queryRows<{ phase: string }>(dataSource.manager, `SELECT phase FROM ledger WHERE gid = $1 ORDER BY id`, [gid]);
  return rows.map((r) => r.phase);
}

async function count(gid: string, phase: string): Promise<number> {
  return (await effects(gid)).filter((p) => p === phase).length;
}

async function barrierRows(gid: string): Promise<{ phase: string; origin: string }[]> {
  return queryRows(dataSource.manager, `SELECT phase, origin FROM dtx_barrier WHERE gid = $1 ORDER BY phase`, [gid]);
}

beforeAll(async () => {
  db = await createTestDatabase('barrier');
  dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: [CreateDtxBarrier1763800000100] });
  await dataSource.initialize();
  await dataSource.runMigrations();
  await dataSource.query(`CREATE TABLE ledger (id serial PRIMARY KEY, gid text NOT NULL, branch_id text NOT NULL, phase text NOT NULL, amount int)`);
  barrier = new BranchBarrier(dataSource);
});

afterAll(async () => {
  if (dataSource?.isInitialized) await dataSource.destroy();
  await db?.drop();
});

describe('BranchBarrier: idempotency', () => {
  it('try then duplicate try: business applied once, the duplicate answers the first result', async () => {
    const gid = 'idem-try';
    const first = await run(gid, 'try');
    expect(first).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    const second = await run(gid, 'try');
    expect(second.kind).toBe('ok');
    if (first.kind !== 'ok' || second.kind !== 'ok') throw new Error('unreachable');
    expect(second.duplicate).toBe(true);
    expect(second.result).toEqual(first.result);
    expect(await effects(gid)).toEqual(['try']);
  });

  it('try, confirm, duplicate confirm: confirm applied once', async () => {
    const gid = 'idem-confirm';
    expect(await run(gid, 'try')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await run(gid, 'confirm')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    expect(await run(gid, 'confirm')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects(gid)).toEqual(['try', 'confirm']);
  });

  it('try, cancel, duplicate cancel: cancel applied once', async () => {
    const gid = 'idem-cancel';
    expect(await run(gid, 'try')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await run(gid, 'cancel')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    expect(await run(gid, 'cancel')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects(gid)).toEqual(['try', 'cancel']);
  });

  it('branches of one gid are independent', async () => {
    const gid = 'idem-branches';
    await run(gid, 'try', 'tcc', 'b1');
    expect(await run(gid, 'try', 'tcc', 'b2')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await run(gid, 'cancel', 'tcc', 'b1')).toMatchObject({ kind: 'ok', skipped: false });
    expect(await run(gid, 'confirm', 'tcc', 'b2')).toMatchObject({ kind: 'ok', skipped: false });
    expect(await effects(gid)).toEqual(['try', 'try', 'cancel', 'confirm']);
  });
});

describe('BranchBarrier: null compensation and anti-hanging', () => {
  it('cancel before try changes nothing; the late try is refused without running; a further cancel is a duplicate', async () => {
    const gid = 'null-comp';
    let ran = 0;
    const cancelBody = call(gid, 'cancel');
    const cancel = await barrier.run(cancelBody, async (m) => {
      ran++;
      return record(cancelBody)(m);
    });
    expect(cancel).toMatchObject({ kind: 'ok', skipped: true });
    expect(ran).toBe(0);

    const tryBody = call(gid, 'try');
    const lateTry = await barrier.run(tryBody, async (m) => {
      ran++;
      return record(tryBody)(m);
    });
    expect(lateTry.kind).toBe('failed');
    expect(ran).toBe(0);

    expect(await run(gid, 'cancel')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects(gid)).toEqual([]);
    // The barrier keeps the marker that makes the late try refuse.
    expect(await barrierRows(gid)).toEqual([
      { phase: 'phase1', origin: 'rollback' },
      { phase: 'rollback', origin: 'rollback' },
    ]);
  });
});

describe('BranchBarrier: failures', () => {
  it('a try throwing BusinessFailure answers failed and rolls back barrier row and business row; a retry can succeed', async () => {
    const gid = 'fail-business';
    const body = call(gid, 'try');
    const refused = await barrier.run(body, async (manager) => {
      await record(body)(manager);
      throw new BusinessFailure('insufficient funds', { reason: 'insufficient_funds', balance: 3 });
    });
    expect(refused).toEqual({ kind: 'failed', message: 'insufficient funds', details: { reason: 'insufficient_funds', balance: 3 } });
    expect(await effects(gid)).toEqual([]);
    expect(await barrierRows(gid)).toEqual([]);

    const retried = await run(gid, 'try');
    expect(retried).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    expect(await effects(gid)).toEqual(['try']);
    expect(await barrierRows(gid)).toEqual([{ phase: 'phase1', origin: 'phase1' }]);
  });

  it('a try throwing a plain Error rejects with that error and leaves nothing behind', async () => {
    const gid = 'fail-crash';
    const body = call(gid, 'try');
    const boom = new Error('disk on fire');
    await expect(
      barrier.run(body, async (manager) => {
        await record(body)(manager);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await effects(gid)).toEqual([]);
    expect(await barrierRows(gid)).toEqual([]);

    // Nothing recorded: the retry runs the business for real.
    expect(await run(gid, 'try')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await effects(gid)).toEqual(['try']);
  });
});

describe('BranchBarrier: concurrency', () => {
  it('10 concurrent identical tries: business applied exactly once, all answers ok with the same result', async () => {
    const gid = 'conc-try';
    const answers = await Promise.all(Array.from({ length: 10 }, () => run(gid, 'try')));
    expect(answers.map((a) => a.kind)).toEqual(Array(10).fill('ok'));
    const oks = answers.filter((a): a is Extract<BarrierOutcome, { kind: 'ok' }> => a.kind === 'ok');
    expect(oks.filter((a) => !a.duplicate)).toHaveLength(1);
    const first = oks.find((a) => !a.duplicate)!;
    for (const a of oks) expect(a.result).toEqual(first.result);
    expect(await effects(gid)).toEqual(['try']);
  });

  it('a try racing a cancel (20 rounds): both applied, or neither and the try refused; never try without cancel', async () => {
    const tally = { both: 0, neither: 0 };
    for (let i = 0; i < 20; i++) {
      const gid = `race-${i}`;
      // Alternate which call starts first so both orders get exercised.
      const [tried, cancelled] =
        i % 2 === 0
          ? await Promise.all([run(gid, 'try'), run(gid, 'cancel')])
          : await Promise.all([run(gid, 'cancel'), run(gid, 'try')]).then(([c, t]) => [t, c] as const);
      expect(cancelled.kind, `round ${i}: cancel`).toBe('ok');
      const tryApplied = await count(gid, 'try');
      const cancelApplied = await count(gid, 'cancel');
      expect(tryApplied, `round ${i}: try applied at most once`).toBeLessThanOrEqual(1);
      expect(cancelApplied, `round ${i}: cancel applied at most once`).toBeLessThanOrEqual(1);
      if (tryApplied === 1) {
        expect(cancelApplied, `round ${i}: try applied without its cancel`).toBe(1);
        expect(tried.kind, `round ${i}`).toBe('ok');
        tally.both++;
      } else {
        expect(cancelApplied, `round ${i}: cancel applied without try`).toBe(0);
        expect(tried.kind, `round ${i}: the try must be refused`).toBe('failed');
        tally.neither++;
      }
    }
    expect(tally.both + tally.neither).toBe(20);
  });
});

describe('BranchBarrier: every phase family (keyed by phase kind)', () => {
  it('2pc: prepare/commit are idempotent; rollback after prepare applies once; rollback before prepare is null and refuses the late prepare', async () => {
    const gid = 'fam-2pc';
    expect(await run(gid, 'prepare', '2pc')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await run(gid, 'prepare', '2pc')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await run(gid, 'commit', '2pc')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    expect(await run(gid, 'commit', '2pc')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects(gid)).toEqual(['prepare', 'commit']);
    expect((await barrierRows(gid)).map((r) => r.phase)).toEqual(['commit', 'phase1']);

    const rb = 'fam-2pc-rb';
    await run(rb, 'prepare', '2pc');
    expect(await run(rb, 'rollback', '2pc')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    expect(await run(rb, 'rollback', '2pc')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects(rb)).toEqual(['prepare', 'rollback']);

    const early = 'fam-2pc-early';
    expect(await run(early, 'rollback', '2pc')).toMatchObject({ kind: 'ok', skipped: true });
    expect((await run(early, 'prepare', '2pc')).kind).toBe('failed');
    expect(await effects(early)).toEqual([]);
  });

  it('saga: execute is idempotent; compensate applies once; compensate before execute is null and refuses the late execute', async () => {
    const gid = 'fam-saga';
    expect(await run(gid, 'execute', 'saga')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await run(gid, 'execute', 'saga')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await run(gid, 'compensate', 'saga')).toMatchObject({ kind: 'ok', duplicate: false, skipped: false });
    expect(await run(gid, 'compensate', 'saga')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects(gid)).toEqual(['execute', 'compensate']);
    expect((await barrierRows(gid)).map((r) => r.phase)).toEqual(['phase1', 'rollback']);

    const early = 'fam-saga-early';
    expect(await run(early, 'compensate', 'saga')).toMatchObject({ kind: 'ok', skipped: true });
    expect((await run(early, 'execute', 'saga')).kind).toBe('failed');
    expect(await effects(early)).toEqual([]);
  });
});
