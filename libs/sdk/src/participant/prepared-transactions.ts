import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from './barrier.js';
import { BusinessFailure } from './business-failure.js';
import { queryRows } from './query-rows.js';
import { DTX_DATA_SOURCE } from './barrier-data-source.js';

const XID_PATTERN = /^dtx:[A-Za-z0-9_.:-]{1,64}:[0-9a-f]{40}$/;
/** SQLSTATE undefined_object: COMMIT/ROLLBACK PREPARED of an id that is not prepared. */
const UNDEFINED_OBJECT = '42704';

function sqlState(error: unknown): string | undefined {
  const candidate = error as { code?: unknown; driverError?: { code?: unknown } };
  const code = candidate.driverError?.code ?? candidate.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * 2PC backed by real Postgres prepared transactions (XA style). Prepare runs the business work
 * in a local transaction that ends with PREPARE TRANSACTION instead of COMMIT: the change is
 * durable but invisible, and holds its locks, until the coordinator decides. Commit is COMMIT
 * PREPARED, rollback ROLLBACK PREPARED; both are idempotent. The barrier rows (same table as
 * BranchBarrier) give duplicate detection and anti-hanging. A participant never finishes its
 * prepared transactions on its own: after a restart it only lists them.
 */
@Injectable()
export class PreparedTransactions {
  private readonly logger = new Logger('DtxXa');

  constructor(@Inject(DTX_DATA_SOURCE) private readonly dataSource: DataSource) {}

  /** The prepared-transaction id of a branch: derived from gid and branchId, prefixed with the participant. */
  static xidFor(participant: string, gid: string, branchId: string): string {
    const hash = createHash('sha256').update(`${gid}\n${branchId}`).digest('hex').slice(0, 40);
    return `dtx:${participant}:${hash}`;
  }

  async prepare(participant: string, call: PhaseCallBody, business: (manager: EntityManager) => Promise<Json | void>): Promise<BarrierOutcome> {
    const xid = this.xid(participant, call);
    if (await this.isPrepared(xid)) return { kind: 'ok', result: null, duplicate: true, skipped: true };
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    let open = false;
    try {
      await runner.query('BEGIN');
      open = true;
      // A prepare still running elsewhere for this branch holds the barrier row: give up soon, be retried.
      await runner.query(`SET LOCAL lock_timeout = '5s'`);
      const inserted = await queryRows(
        runner.manager,
        `INSERT INTO dtx_barrier (gid, branch_id, phase, origin) VALUES ($1, $2, 'phase1', 'phase1')
         ON CONFLICT (gid, branch_id, phase) DO NOTHING RETURNING 1`,
        [call.gid, call.branchId],
      );
      if (inserted.length === 0) {
        const existing = await queryRows<{ origin: string }>(
          runner.manager,
          `SELECT origin FROM dtx_barrier WHERE gid = $1 AND branch_id = $2 AND phase = 'phase1'`,
          [call.gid, call.branchId],
        );
        await runner.query('ROLLBACK');
        open = false;
        if (existing[0]?.origin === 'rollback') {
          return { kind: 'failed', message: `branch ${call.branchId} of ${call.gid} was already rolled back`, details: { reason: 'rolled_back' } };
        }
        // Prepared earlier and already committed.
        return { kind: 'ok', result: null, duplicate: true, skipped: true };
      }
      let result: Json;
      try {
        result = (await business(runner.manager)) ?? null;
      } catch (error) {
        await runner.query('ROLLBACK');
        open = false;
        if (error instanceof BusinessFailure) return { kind: 'failed', message: error.message, details: error.details };
        throw error;
      }
      await runner.query(`UPDATE dtx_barrier SET result = $3::jsonb WHERE gid = $1 AND branch_id = $2 AND phase = 'phase1'`, [
        call.gid,
        call.branchId,
        JSON.stringify(result),
      ]);
      await runner.query(`PREPARE TRANSACTION '${xid}'`);
      open = false;
      return { kind: 'ok', result, duplicate: false, skipped: false };
    } finally {
      if (open) await runner.query('ROLLBACK').catch(() => undefined);
      await runner.release();
    }
  }

  /** COMMIT PREPARED; an id already committed, or never prepared, is success. */
  async commit(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    const xid = this.xid(participant, call);
    if (await this.isPrepared(xid)) await this.finish(`COMMIT PREPARED '${xid}'`);
    return { kind: 'ok', result: null, duplicate: false, skipped: false };
  }

  /**
   * ROLLBACK PREPARED, then the phase-1 marker so that a prepare arriving late (or again)
   * refuses. A prepare still running makes the marker wait, then time out: the error reaches
   * the coordinator as a transient failure and the rollback is retried.
   */
  async rollback(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    const xid = this.xid(participant, call);
    if (await this.isPrepared(xid)) await this.finish(`ROLLBACK PREPARED '${xid}'`);
    const committed = await this.dataSource.transaction(async (manager) => {
      await manager.query(`SET LOCAL lock_timeout = '5s'`);
      const inserted = await queryRows(
        manager,
        `INSERT INTO dtx_barrier (gid, branch_id, phase, origin) VALUES ($1, $2, 'phase1', 'rollback')
         ON CONFLICT (gid, branch_id, phase) DO NOTHING RETURNING 1`,
        [call.gid, call.branchId],
      );
      if (inserted.length > 0) return false;
      const existing = await queryRows<{ origin: string }>(
        manager,
        `SELECT origin FROM dtx_barrier WHERE gid = $1 AND branch_id = $2 AND phase = 'phase1'`,
        [call.gid, call.branchId],
      );
      return existing[0]?.origin === 'phase1';
    });
    if (committed) this.logger.warn(`gid=${call.gid} branchId=${call.branchId} rollback after the branch was committed: nothing to undo`);
    return { kind: 'ok', result: null, duplicate: false, skipped: false };
  }

  /** This participant's prepared transactions in its database, left for the coordinator to finish. */
  async listOwn(participant: string): Promise<string[]> {
    const rows = await queryRows<{ gid: string }>(
      this.dataSource.manager,
      `SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1) ORDER BY prepared`,
      [`dtx:${participant}:`],
    );
    return rows.map((r) => r.gid);
  }

  private xid(participant: string, call: PhaseCallBody): string {
    const xid = PreparedTransactions.xidFor(participant, call.gid, call.branchId);
    if (!XID_PATTERN.test(xid)) throw new Error(`participant name ${participant} cannot be part of a prepared-transaction id`);
    return xid;
  }

  private async isPrepared(xid: string): Promise<boolean> {
    const rows = await queryRows(this.dataSource.manager, `SELECT 1 FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()`, [xid]);
    return rows.length > 0;
  }

  /** COMMIT/ROLLBACK PREPARED outside any transaction block; someone finishing it first is fine. */
  private async finish(statement: string): Promise<void> {
    try {
      await this.dataSource.query(statement);
    } catch (error) {
      if (sqlState(error) !== UNDEFINED_OBJECT) throw error;
    }
  }
}
