import { createHash } from 'node:crypto';
import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import { rolledBackRefusal, type BarrierOutcome } from './barrier-rules.js';
import { BarrierSql, type BranchKey } from './barrier-sql.js';
import { BusinessFailure } from './business-failure.js';
import type { BusinessWork, XaDataLayer } from './data-layer.js';
import type { SqlDialect, SqlDriver, SqlRun, SqlStatement } from './sql.js';

const PARTICIPANT_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

const statement = (text: string, reads: SqlStatement['reads'] = 'count'): SqlStatement => ({ text, values: [], reads });

/**
 * A branch's prepared-transaction id, derived from gid and branchId and tied to the
 * participant so that each lists only its own. Postgres: one string `dtx:<participant>:<hash>`;
 * MySQL/MariaDB: the XID's gtrid `dtx:<hash>` (at most 64 bytes) and bqual the participant.
 */
export class Xid {
  readonly hash: string;

  constructor(
    readonly participant: string,
    key: BranchKey,
  ) {
    if (!PARTICIPANT_PATTERN.test(participant)) throw new Error(`participant name ${participant} cannot be part of a prepared-transaction id`);
    this.hash = createHash('sha256').update(`${key.gid}\n${key.branchId}`).digest('hex').slice(0, 40);
  }

  /** How it is shown (and, on Postgres, its id). */
  get name(): string {
    return `dtx:${this.participant}:${this.hash}`;
  }

  /** The id in a statement: quoted; the characters in it were checked. */
  literal(dialect: SqlDialect): string {
    return dialect === 'postgres' ? `'${this.name}'` : `'dtx:${this.hash}', '${this.participant}'`;
  }
}

/** The statements of prepared transactions in one dialect. */
class XaSql {
  constructor(readonly dialect: SqlDialect) {}

  begin(xid: Xid): SqlStatement[] {
    return [statement(this.dialect === 'postgres' ? 'BEGIN' : `XA START ${xid.literal('mysql')}`)];
  }

  prepare(xid: Xid): SqlStatement[] {
    return this.dialect === 'postgres'
      ? [statement(`PREPARE TRANSACTION ${xid.literal('postgres')}`)]
      : [statement(`XA END ${xid.literal('mysql')}`), statement(`XA PREPARE ${xid.literal('mysql')}`)];
  }

  /** Ends the transaction a session opened, unprepared, undoing it. */
  abandon(xid: Xid): SqlStatement[] {
    return this.dialect === 'postgres'
      ? [statement('ROLLBACK')]
      : [statement(`XA END ${xid.literal('mysql')}`), statement(`XA ROLLBACK ${xid.literal('mysql')}`)];
  }

  finish(xid: Xid, decision: 'commit' | 'rollback'): SqlStatement {
    if (this.dialect === 'postgres') return statement(`${decision === 'commit' ? 'COMMIT' : 'ROLLBACK'} PREPARED ${xid.literal('postgres')}`);
    return statement(`XA ${decision === 'commit' ? 'COMMIT' : 'ROLLBACK'} ${xid.literal('mysql')}`);
  }

  /** The prepared transactions of this database (Postgres) or server (MySQL: XA RECOVER). */
  list(): SqlStatement {
    return this.dialect === 'postgres'
      ? statement(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared`, 'rows')
      : statement('XA RECOVER', 'rows');
  }

  /** The names (Xid.name) of the participant's prepared transactions among the rows of list(). */
  ownNames(rows: Record<string, unknown>[], participant: string): string[] {
    if (this.dialect === 'postgres') return rows.map((row) => String(row.gid)).filter((gid) => gid.startsWith(`dtx:${participant}:`));
    const names: string[] = [];
    for (const row of rows) {
      const data = Buffer.isBuffer(row.data) ? row.data.toString('latin1') : String(row.data);
      const gtridLength = Number(row.gtrid_length);
      const gtrid = data.slice(0, gtridLength);
      if (data.slice(gtridLength) === participant && gtrid.startsWith('dtx:')) names.push(`dtx:${participant}:${gtrid.slice('dtx:'.length)}`);
    }
    return names;
  }

  /** A finish of an id that is not (or no longer) prepared: Postgres undefined_object, MySQL XAER_NOTA. */
  isUnknownXid(error: unknown): boolean {
    const candidate = error as { code?: unknown; errno?: unknown; driverError?: { code?: unknown; errno?: unknown }; cause?: { code?: unknown; errno?: unknown } };
    const codes = [candidate.code, candidate.errno, candidate.driverError?.code, candidate.driverError?.errno, candidate.cause?.code, candidate.cause?.errno];
    return this.dialect === 'postgres' ? codes.includes('42704') : codes.includes(1397) || codes.includes('ER_XAER_NOTA');
  }
}

/**
 * 2PC on real prepared transactions: Postgres PREPARE TRANSACTION, MySQL/MariaDB XA. The
 * barrier rows (the same table as the barrier's) give duplicate detection and anti-hanging.
 */
export class SqlXa<Tx> implements XaDataLayer<Tx> {
  private readonly xa: XaSql;

  constructor(
    private readonly driver: SqlDriver<Tx>,
    private readonly sql: BarrierSql,
    private readonly lockTimeoutMs: number,
  ) {
    this.xa = new XaSql(driver.dialect);
  }

  async prepare(participant: string, call: PhaseCallBody, work: BusinessWork<Tx>): Promise<BarrierOutcome> {
    const xid = new Xid(participant, call);
    if (await this.isPrepared(xid)) return { kind: 'ok', result: null, duplicate: true, skipped: true };
    const session = await this.driver.session!();
    let open = false;
    let prepared = false;
    try {
      // MySQL's lock timeout is a session setting: before the transaction starts.
      if (this.driver.dialect === 'mysql') await session.run(this.sql.lockTimeout(this.lockTimeoutMs));
      await runAll(session.run, this.xa.begin(xid));
      open = true;
      // A prepare still running elsewhere for this branch holds the barrier row: give up soon, be retried.
      if (this.driver.dialect === 'postgres') await session.run(this.sql.lockTimeout(this.lockTimeoutMs));
      const inserted = (await session.run(this.sql.insert(call, { slot: 'phase1', origin: 'phase1' }))).affected > 0;
      if (!inserted) {
        const stored = BarrierSql.storedPhase1((await session.run(this.sql.selectPhase1(call))).rows[0]);
        await runAll(session.run, this.xa.abandon(xid));
        open = false;
        if (stored?.origin === 'rollback') return rolledBackRefusal(call);
        // Prepared earlier and already committed.
        return { kind: 'ok', result: stored?.result ?? null, duplicate: true, skipped: true };
      }
      let result: Json;
      try {
        result = (await work(session.handle)) ?? null;
      } catch (error) {
        await runAll(session.run, this.xa.abandon(xid));
        open = false;
        if (error instanceof BusinessFailure) return { kind: 'failed', message: error.message, details: error.details };
        throw error;
      }
      await session.run(this.sql.storeResult(call, result));
      await runAll(session.run, this.xa.prepare(xid));
      open = false;
      prepared = true;
      return { kind: 'ok', result, duplicate: false, skipped: false };
    } finally {
      let broken = false;
      if (open) broken = !(await runAll(session.run, this.xa.abandon(xid)).then(() => true, () => false));
      // A MySQL connection that prepared an XA transaction stays tied to it until it is
      // closed; closed, it leaves the transaction prepared for any connection to finish.
      await session.release({ destroy: broken || (prepared && this.driver.dialect === 'mysql') });
    }
  }

  /** Commits the prepared transaction; one already committed, or never prepared, is success. */
  async commit(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    const xid = new Xid(participant, call);
    if (await this.isPrepared(xid)) await this.finish(xid, 'commit');
    return { kind: 'ok', result: null, duplicate: false, skipped: false };
  }

  /**
   * Rolls the prepared transaction back, then leaves the phase-1 marker so that a prepare
   * arriving late (or again) refuses. A prepare still running makes the marker wait, then time
   * out: the error reaches the coordinator as a transient failure and the rollback is retried.
   */
  async rollback(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    const xid = new Xid(participant, call);
    if (await this.isPrepared(xid)) await this.finish(xid, 'rollback');
    await this.driver.transaction(async (run) => {
      await run(this.sql.lockTimeout(this.lockTimeoutMs));
      await run(this.sql.insert(call, { slot: 'phase1', origin: 'rollback' }));
    });
    return { kind: 'ok', result: null, duplicate: false, skipped: false };
  }

  async listOwn(participant: string): Promise<string[]> {
    const { rows } = await this.driver.run(this.xa.list());
    return this.xa.ownNames(rows, participant);
  }

  private async isPrepared(xid: Xid): Promise<boolean> {
    return (await this.listOwn(xid.participant)).includes(xid.name);
  }

  /** Finishes outside any transaction block; someone finishing it first is fine. */
  private async finish(xid: Xid, decision: 'commit' | 'rollback'): Promise<void> {
    try {
      await this.driver.run(this.xa.finish(xid, decision));
    } catch (error) {
      if (!this.xa.isUnknownXid(error)) throw error;
    }
  }
}

async function runAll(run: SqlRun, statements: SqlStatement[]): Promise<void> {
  for (const one of statements) await run(one);
}
