/**
 * The SDK's barrier against a real Postgres: idempotency, null compensation and anti-hanging
 * (PROTOCOL.md 5.4), including concurrent calls for one branch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSource, EntityManager } from 'typeorm';
import type { Mode, Phase, PhaseCallBody } from '@nest-dtx/protocol';
import { BranchBarrier, BusinessFailure } from '@nest-dtx/sdk';
import type { TestDatabase } from '../support/databases.js';
import { participantDatabase } from '../support/participant-db.js';

let db: TestDatabase;
let dataSource: DataSource;
let barrier: BranchBarrier;

const call = (gid: string, phase: Phase, mode: Mode = 'tcc', branchId = 'b1'): PhaseCallBody => ({ gid, branchId, mode, action: 'pay', phase, payload: {} });

/** Business logic that leaves a trace, so tests count how often it took effect. */
const record = (gid: string, phase: Phase) => async (manager: EntityManager) => {
  await manager.query(`INSERT INTO ledger (gid, phase) VALUES ($1, $2)`, [gid, phase]);
  return { recorded: phase };
};

async function effects(gid: string): Promise<string[]> {
  const rows: { phase: string }[] = await dataSource.query(`SELECT phase FROM ledger WHERE gid = $1 ORDER BY id`, [gid]);
  return rows.map((r) => r.phase);
}

const run = (gid: string, phase: Phase, mode: Mode = 'tcc') => barrier.run(call(gid, phase, mode), record(gid, phase));

beforeAll(async () => {
  ({ db, dataSource } = await participantDatabase('barrier', [`CREATE TABLE ledger (id serial PRIMARY KEY, gid text NOT NULL, phase text NOT NULL)`]));
  barrier = new BranchBarrier(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('BranchBarrier', () => {
  it('runs a try once; a duplicate try answers ok with the first result and changes nothing', async () => {
    const first = await run('dup-try', 'try');
    const second = await run('dup-try', 'try');
    expect(first).toEqual({ kind: 'ok', result: { recorded: 'try' }, duplicate: false, skipped: false });
    expect(second).toEqual({ kind: 'ok', result: { recorded: 'try' }, duplicate: true, skipped: true });
    expect(await effects('dup-try')).toEqual(['try']);
  });

  it('confirms once: a duplicate confirm is skipped', async () => {
    await run('dup-confirm', 'try');
    await run('dup-confirm', 'confirm');
    expect(await run('dup-confirm', 'confirm')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects('dup-confirm')).toEqual(['try', 'confirm']);
  });

  it('cancels once: a duplicate cancel is skipped', async () => {
    await run('dup-cancel', 'try');
    await run('dup-cancel', 'cancel');
    expect(await run('dup-cancel', 'cancel')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects('dup-cancel')).toEqual(['try', 'cancel']);
  });

  it('null compensation: a cancel before its try changes nothing; the late try refuses (anti-hanging)', async () => {
    expect(await run('early-cancel', 'cancel')).toEqual({ kind: 'ok', result: null, duplicate: false, skipped: true });
    expect(await run('early-cancel', 'try')).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(await run('early-cancel', 'cancel')).toMatchObject({ kind: 'ok', duplicate: true });
    expect(await effects('early-cancel')).toEqual([]);
  });

  it('a business failure in try rolls the local transaction back, barrier row included: a retry can succeed', async () => {
    const refused = await barrier.run(call('refused', 'try'), async (manager) => {
      await manager.query(`INSERT INTO ledger (gid, phase) VALUES ('refused', 'try')`);
      throw new BusinessFailure('no stock', { reason: 'out_of_stock' });
    });
    expect(refused).toEqual({ kind: 'failed', message: 'no stock', details: { reason: 'out_of_stock' } });
    expect(await effects('refused')).toEqual([]);
    const rows: unknown[] = await dataSource.query(`SELECT 1 FROM dtx_barrier WHERE gid = 'refused'`);
    expect(rows).toHaveLength(0);
    expect(await run('refused', 'try')).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await effects('refused')).toEqual(['try']);
  });

  it('a plain error propagates (the participant answers 5xx: transient) and leaves nothing behind', async () => {
    await expect(
      barrier.run(call('crash', 'try'), async (manager) => {
        await manager.query(`INSERT INTO ledger (gid, phase) VALUES ('crash', 'try')`);
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow('disk on fire');
    expect(await effects('crash')).toEqual([]);
    expect(await dataSource.query(`SELECT 1 FROM dtx_barrier WHERE gid = 'crash'`)).toHaveLength(0);
  });

  it('ten concurrent identical tries take effect exactly once', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => run('concurrent-try', 'try')));
    expect(answers.every((a) => a.kind === 'ok')).toBe(true);
    expect(answers.filter((a) => a.kind === 'ok' && !a.duplicate)).toHaveLength(1);
    expect(await effects('concurrent-try')).toEqual(['try']);
  });

  it('a try racing its cancel ends consistent every time: both applied, or neither and the try refused', async () => {
    for (let i = 0; i < 20; i++) {
      const gid = `race-${i}`;
      const [tried] = await Promise.all([run(gid, 'try'), run(gid, 'cancel')]);
      const applied = await effects(gid);
      if (tried.kind === 'ok') expect([...applied].sort()).toEqual(['cancel', 'try']);
      else expect(applied).toEqual([]);
    }
  });

  it.each([
    ['2pc', 'prepare', 'commit', 'rollback'],
    ['saga', 'execute', null, 'compensate'],
  ] as const)('%s phases go through the same barrier', async (mode, phase1, commit, rollback) => {
    const gid = `mode-${mode}`;
    await run(gid, phase1, mode);
    await run(gid, phase1, mode);
    if (commit) {
      await run(gid, commit, mode);
      await run(gid, commit, mode);
    }
    await run(`${gid}-rb`, rollback, mode);
    expect(await run(`${gid}-rb`, phase1, mode)).toMatchObject({ kind: 'failed' });
    expect(await effects(gid)).toEqual(commit ? [phase1, commit] : [phase1]);
    expect(await effects(`${gid}-rb`)).toEqual([]);
  });
});
