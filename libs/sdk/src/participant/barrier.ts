import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { phaseKind, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import { BusinessFailure } from './business-failure.js';
import { queryRows } from './query-rows.js';
import { DTX_DATA_SOURCE } from './barrier-data-source.js';

/** How long a phase waits for a row lock before giving up (transient failure). */
export const BARRIER_LOCK_TIMEOUT = '5s';

export type BarrierOutcome =
  | { kind: 'ok'; result: Json; duplicate: boolean; skipped: boolean }
  | { kind: 'failed'; message: string; details: Json };

/** Origin of a phase-1 row: the real phase 1, or the marker a rollback leaves when it came first. */
type Origin = 'phase1' | 'commit' | 'rollback';

/**
 * The branch barrier (PROTOCOL.md 5.4, the technique of dtm's sub-transaction barrier). Each
 * phase inserts a row keyed (gid, branchId, phase kind) in the same local transaction as the
 * business change, so that:
 * - a repeated call finds its row and does nothing again (idempotency);
 * - a rollback that finds no phase-1 row leaves a marker in its place and changes nothing
 *   (null compensation);
 * - a phase 1 that finds that marker knows it came too late and refuses (anti-hanging).
 * Concurrent calls for one branch serialise on the primary key.
 */
@Injectable()
export class BranchBarrier {
  constructor(@Inject(DTX_DATA_SOURCE) private readonly dataSource: DataSource) {}

  async run(call: PhaseCallBody, business: (manager: EntityManager) => Promise<Json | void>): Promise<BarrierOutcome> {
    try {
      return await this.dataSource.transaction(async (manager) => {
        // A row held by another branch (a prepared 2PC transaction, say) must not pin this
        // connection forever: fail (a transient 5xx; the coordinator retries) and free it, or
        // the pool fills with waiters and nothing, not even the COMMIT PREPARED that would
        // release the row, can get a connection.
        await manager.query(`SET LOCAL lock_timeout = '${BARRIER_LOCK_TIMEOUT}'`);
        switch (phaseKind(call.phase)) {
          case 'phase1':
            return this.phase1(manager, call, business);
          case 'commit':
            return this.commit(manager, call, business);
          case 'rollback':
            return this.rollback(manager, call, business);
        }
      });
    } catch (error) {
      if (error instanceof BusinessFailure) return { kind: 'failed', message: error.message, details: error.details };
      throw error;
    }
  }

  private async phase1(manager: EntityManager, call: PhaseCallBody, business: (m: EntityManager) => Promise<Json | void>): Promise<BarrierOutcome> {
    if (await this.insert(manager, call, 'phase1', 'phase1')) {
      const result = (await business(manager)) ?? null;
      await manager.query(`UPDATE dtx_barrier SET result = $4::jsonb WHERE gid = $1 AND branch_id = $2 AND phase = $3`, [
        call.gid,
        call.branchId,
        'phase1',
        JSON.stringify(result),
      ]);
      return { kind: 'ok', result, duplicate: false, skipped: false };
    }
    const rows = await queryRows<{ origin: Origin; result: Json }>(
      manager,
      `SELECT origin, result FROM dtx_barrier WHERE gid = $1 AND branch_id = $2 AND phase = 'phase1'`,
      [call.gid, call.branchId],
    );
    if (rows[0]?.origin === 'rollback') {
      throw new BusinessFailure(`branch ${call.branchId} of ${call.gid} was already rolled back`, { reason: 'rolled_back' });
    }
    return { kind: 'ok', result: rows[0]?.result ?? null, duplicate: true, skipped: true };
  }

  private async commit(manager: EntityManager, call: PhaseCallBody, business: (m: EntityManager) => Promise<Json | void>): Promise<BarrierOutcome> {
    if (!(await this.insert(manager, call, 'commit', 'commit'))) return { kind: 'ok', result: null, duplicate: true, skipped: true };
    const result = (await business(manager)) ?? null;
    return { kind: 'ok', result, duplicate: false, skipped: false };
  }

  private async rollback(manager: EntityManager, call: PhaseCallBody, business: (m: EntityManager) => Promise<Json | void>): Promise<BarrierOutcome> {
    // Taking the phase-1 slot first means a late phase 1 will find it and refuse.
    const phase1NeverRan = await this.insert(manager, call, 'phase1', 'rollback');
    if (!(await this.insert(manager, call, 'rollback', 'rollback'))) return { kind: 'ok', result: null, duplicate: true, skipped: true };
    if (phase1NeverRan) return { kind: 'ok', result: null, duplicate: false, skipped: true };
    const result = (await business(manager)) ?? null;
    return { kind: 'ok', result, duplicate: false, skipped: false };
  }

  private async insert(manager: EntityManager, call: PhaseCallBody, phase: 'phase1' | 'commit' | 'rollback', origin: Origin): Promise<boolean> {
    const rows = await queryRows(
      manager,
      `INSERT INTO dtx_barrier (gid, branch_id, phase, origin) VALUES ($1, $2, $3, $4)
       ON CONFLICT (gid, branch_id, phase) DO NOTHING RETURNING 1`,
      [call.gid, call.branchId, phase, origin],
    );
    return rows.length > 0;
  }
}
