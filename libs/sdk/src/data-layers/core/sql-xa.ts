import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Json, PhaseCallBody } from '@nest-dtx/protocol';
import { rolledBackRefusal, type BarrierOutcome } from './barrier-rules.js';
import { BarrierSql, type BranchKey } from './barrier-sql.js';
import { BusinessFailure } from './business-failure.js';
import type { BusinessWork, XaDataLayer } from './data-layer.js';
import { finalAnswer } from './ongoing-answer.js';
import type { SqlSchema } from './schema.js';
import type { SqlDialect, SqlDriver, SqlRun, SqlStatement } from './sql.js';
import { storedAnswerText } from './stored-answer.js';

/** ASCII only and at most 64 characters: the participant is MySQL's bqual, at most 64 bytes. */
const PARTICIPANT_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
/** The branch's part of an id: 40 hex digits of SHA-256 over gid and branchId. */
const HASH_PATTERN = /^[0-9a-f]{40}$/;
/** XA START's default formatID, the one our XA ids have. */
const MYSQL_FORMAT_ID = 1;

/** XA keeps its bookkeeping (duplicates, anti-hanging) in the barrier table: nothing else of the schema. */
const BARRIER_NEEDS = { at: false } as const;

const statement = (text: string, reads: SqlStatement['reads'] = 'count'): SqlStatement => ({ text, values: [], reads });

function checkParticipant(participant: string): void {
  if (!PARTICIPANT_PATTERN.test(participant)) throw new Error(`participant name ${participant} cannot be part of a prepared-transaction id`);
}

/**
 * A branch's prepared-transaction id, derived from gid and branchId and tied to the participant
 * so that each lists only its own. Its `name`, `dtx:<participant>:<hash>`, is how listOwn shows
 * it on every database, and Postgres's gid; MySQL/MariaDB's XA id is made of the same parts
 * (see XaSql).
 */
export class Xid {
  readonly hash: string;

  constructor(
    readonly participant: string,
    key: BranchKey,
  ) {
    checkParticipant(participant);
    this.hash = createHash('sha256').update(`${key.gid}\n${key.branchId}`).digest('hex').slice(0, 40);
  }

  get name(): string {
    return `dtx:${this.participant}:${this.hash}`;
  }
}

/**
 * The statements of prepared transactions in one dialect.
 *
 * Postgres: the gid is Xid.name (at most 109 characters of the 200 allowed), and
 * pg_prepared_xacts says which database each belongs to.
 *
 * MySQL/MariaDB: XA RECOVER lists the prepared XA transactions of the whole server, with nothing
 * that says which database they belong to, so the id carries it: gtrid `dtx:<tag>:<hash>` (57
 * bytes; MySQL allows 64) where the tag is 12 hex digits of SHA-256 over the database's name,
 * bqual the participant (at most 64 bytes, as MySQL allows), formatID 1. Two databases on one
 * server (a staging and a production one, say) are then kept apart even under one participant
 * name: each lists only its own, a branch of the same gid in each is two XA transactions, and a
 * commit in one never finishes the other's.
 */
class XaSql {
  private constructor(
    readonly dialect: SqlDialect,
    /** MySQL: the gtrid's start, `dtx:<tag>:`. */
    private readonly gtridPrefix: string,
  ) {}

  /** The statements for the driver's database (MySQL: its name, asked once). */
  static async of<Tx>(driver: SqlDriver<Tx>): Promise<XaSql> {
    if (driver.dialect === 'postgres') return new XaSql('postgres', '');
    const { rows } = await driver.run(statement('SELECT DATABASE() AS name', 'rows'));
    const name = rows[0]?.name;
    if (typeof name !== 'string' || name === '') {
      throw new Error('XA on MySQL/MariaDB needs connections with a default database (the pool option `database`): the barrier table lives there');
    }
    return new XaSql('mysql', `dtx:${createHash('sha256').update(name).digest('hex').slice(0, 12)}:`);
  }

  /** The id in a statement: quoted; the characters in it were checked. */
  private id(xid: Xid): string {
    return this.dialect === 'postgres' ? `'${xid.name}'` : `'${this.gtridPrefix}${xid.hash}', '${xid.participant}', ${MYSQL_FORMAT_ID}`;
  }

  begin(xid: Xid): SqlStatement {
    return statement(this.dialect === 'postgres' ? 'BEGIN' : `XA START ${this.id(xid)}`);
  }

  prepare(xid: Xid): SqlStatement[] {
    return this.dialect === 'postgres'
      ? [statement(`PREPARE TRANSACTION ${this.id(xid)}`)]
      : [statement(`XA END ${this.id(xid)}`), statement(`XA PREPARE ${this.id(xid)}`)];
  }

  /** Ends, undone, the transaction that begin() opened and that is not prepared; throws if the session cannot. */
  async abandon(run: SqlRun, xid: Xid): Promise<void> {
    if (this.dialect === 'postgres') {
      // Also after a failed statement (the transaction is then aborted) or a failed PREPARE
      // TRANSACTION (then already rolled back: ROLLBACK only warns).
      await run(statement('ROLLBACK'));
      return;
    }
    // XA END fails where it has nothing to do: after a deadlock (MariaDB has rolled the work
    // back and left the XA transaction ROLLBACK ONLY) or after XA END itself (IDLE, when XA
    // PREPARE failed). XA ROLLBACK ends the transaction from all three states.
    await run(statement(`XA END ${this.id(xid)}`)).catch(() => undefined);
    await run(statement(`XA ROLLBACK ${this.id(xid)}`));
  }

  finish(xid: Xid, decision: 'commit' | 'rollback'): SqlStatement {
    if (this.dialect === 'postgres') return statement(`${decision === 'commit' ? 'COMMIT' : 'ROLLBACK'} PREPARED ${this.id(xid)}`);
    return statement(`XA ${decision === 'commit' ? 'COMMIT' : 'ROLLBACK'} ${this.id(xid)}`);
  }

  /** The prepared transactions of this database (Postgres) or of the whole server (MySQL: XA RECOVER). */
  list(): SqlStatement {
    return this.dialect === 'postgres'
      ? statement(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared`, 'rows')
      : statement('XA RECOVER', 'rows');
  }

  /**
   * The names (Xid.name) of the participant's prepared transactions among the rows of list():
   * exactly its own (participant `shop` is not `shop:eu`, whose ids start the same way).
   */
  ownNames(rows: Record<string, unknown>[], participant: string): string[] {
    const names: string[] = [];
    if (this.dialect === 'postgres') {
      const prefix = `dtx:${participant}:`;
      for (const gid of rows.map((row) => String(row.gid))) {
        if (gid.startsWith(prefix) && HASH_PATTERN.test(gid.slice(prefix.length))) names.push(gid);
      }
      return names;
    }
    for (const row of rows) {
      if (Number(row.formatID) !== MYSQL_FORMAT_ID) continue;
      // mysql2 gives `data` (gtrid then bqual) as a Buffer; other drivers may give a string.
      const data = Buffer.isBuffer(row.data) ? row.data.toString('latin1') : String(row.data);
      const gtridLength = Number(row.gtrid_length);
      const gtrid = data.slice(0, gtridLength);
      const bqual = data.slice(gtridLength, gtridLength + Number(row.bqual_length));
      if (bqual !== participant || !gtrid.startsWith(this.gtridPrefix)) continue;
      const hash = gtrid.slice(this.gtridPrefix.length);
      if (HASH_PATTERN.test(hash)) names.push(`dtx:${participant}:${hash}`);
    }
    return names;
  }

  /** A finish of an id that is not prepared (as far as this session can see): Postgres undefined_object, MySQL XAER_NOTA (1397). */
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
  private statements?: Promise<XaSql>;

  constructor(
    private readonly driver: SqlDriver<Tx>,
    private readonly sql: BarrierSql,
    private readonly lockTimeoutMs: number,
    private readonly schema: SqlSchema,
  ) {}

  prepare(participant: string, call: PhaseCallBody, work: BusinessWork<Tx>): Promise<BarrierOutcome> {
    return this.schema.explain(BARRIER_NEEDS, () => this.prepareBranch(participant, call, work));
  }

  private async prepareBranch(participant: string, call: PhaseCallBody, work: BusinessWork<Tx>): Promise<BarrierOutcome> {
    const xid = new Xid(participant, call);
    const xa = await this.xaSql();
    if (await this.isPrepared(xa, xid)) return { kind: 'ok', result: null, duplicate: true, skipped: true };
    const session = await this.driver.session!();
    // open: the session has a transaction of ours that is not prepared; clean: it can go back to the pool.
    let open = false;
    let prepared = false;
    let clean = true;
    const abandon = async (): Promise<void> => {
      open = false;
      // A session that cannot end its transaction is closed instead: the database then undoes it.
      clean = await xa.abandon(session.run, xid).then(
        () => true,
        () => false,
      );
    };
    try {
      // MySQL's lock timeout is a session setting: before the transaction starts.
      if (this.driver.dialect === 'mysql') await session.run(this.sql.lockTimeout(this.lockTimeoutMs));
      if (!session.begun) await session.run(xa.begin(xid));
      else if (this.driver.dialect !== 'postgres') throw new Error(`${this.driver.library}: an XA transaction cannot start inside a transaction the library has begun`);
      open = true;
      // A prepare still running elsewhere for this branch holds the barrier row: give up soon, be retried.
      if (this.driver.dialect === 'postgres') await session.run(this.sql.lockTimeout(this.lockTimeoutMs));
      const inserted = (await session.run(this.sql.insert(call, { slot: 'phase1', origin: 'phase1' }))).affected > 0;
      if (!inserted) {
        const stored = BarrierSql.storedRow((await session.run(this.sql.selectSlot(call, 'phase1', 'read'))).rows[0]);
        await abandon();
        if (stored?.origin === 'rollback') return rolledBackRefusal(call);
        // Prepared earlier and already committed. (An XA prepare never stores ongoing: it is refused below.)
        return { kind: 'ok', result: stored?.answer.kind === 'final' ? stored.answer.result : null, duplicate: true, skipped: true };
      }
      let result: Json;
      try {
        // An XA phase 1 ends prepared in this very call: it cannot answer ongoing (a participant bug, thrown).
        result = finalAnswer(await work(session.handle), 'XaAction');
      } catch (error) {
        // The business work's own error, not whatever ending the transaction may answer after it.
        await abandon();
        if (error instanceof BusinessFailure) return { kind: 'failed', message: error.message, details: error.details };
        throw error;
      }
      await session.run(this.sql.storeAnswer(call, 'phase1', storedAnswerText({ kind: 'final', result })));
      for (const one of xa.prepare(xid)) await session.run(one);
      open = false;
      prepared = true;
      return { kind: 'ok', result, duplicate: false, skipped: false };
    } finally {
      if (open) await abandon();
      // A MySQL connection that prepared an XA transaction stays tied to it (and refuses any other
      // work) until it is closed; closed, it leaves the transaction prepared for any connection to finish.
      await session.release({ destroy: !clean || (prepared && this.driver.dialect === 'mysql') });
    }
  }

  /** Commits the prepared transaction; one already committed, or never prepared, is success. */
  async commit(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    const xid = new Xid(participant, call);
    const xa = await this.xaSql();
    if (await this.isPrepared(xa, xid)) await this.finish(xa, xid, 'commit');
    return { kind: 'ok', result: null, duplicate: false, skipped: false };
  }

  /**
   * Rolls the prepared transaction back, then leaves the phase-1 marker so that a prepare
   * arriving late (or again) refuses. A prepare still running makes the marker wait, then time
   * out: the error reaches the coordinator as a transient failure and the rollback is retried.
   */
  async rollback(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    const xid = new Xid(participant, call);
    const xa = await this.xaSql();
    if (await this.isPrepared(xa, xid)) await this.finish(xa, xid, 'rollback');
    await this.schema.explain(BARRIER_NEEDS, () =>
      this.driver.transaction(async (run) => {
        await run(this.sql.lockTimeout(this.lockTimeoutMs));
        await run(this.sql.insert(call, { slot: 'phase1', origin: 'rollback' }));
      }),
    );
    return { kind: 'ok', result: null, duplicate: false, skipped: false };
  }

  async listOwn(participant: string): Promise<string[]> {
    checkParticipant(participant);
    return this.own(await this.xaSql(), participant);
  }

  private async own(xa: XaSql, participant: string): Promise<string[]> {
    const { rows } = await this.driver.run(xa.list());
    return xa.ownNames(rows, participant);
  }

  private async isPrepared(xa: XaSql, xid: Xid): Promise<boolean> {
    // Postgres can be asked for the one id (every prepare, commit and rollback asks); MySQL's
    // XA RECOVER only lists them all.
    if (this.driver.dialect === 'postgres') {
      const { rows } = await this.driver.run({
        text: `SELECT 1 FROM pg_prepared_xacts WHERE gid = ? AND database = current_database()`,
        values: [xid.name],
        reads: 'rows',
      });
      return rows.length > 0;
    }
    return (await this.own(xa, xid.participant)).includes(xid.name);
  }

  /** The dialect's statements, made once (MySQL asks for the database's name); a failure is tried again next time. */
  private xaSql(): Promise<XaSql> {
    this.statements ??= XaSql.of(this.driver).catch((error: unknown) => {
      this.statements = undefined;
      throw error;
    });
    return this.statements;
  }

  /**
   * Finishes the prepared transaction, outside any transaction block; someone finishing it first
   * is fine. MySQL/MariaDB: until the server has seen the close of the connection that prepared
   * it, XA RECOVER lists the transaction but XA COMMIT and XA ROLLBACK answer XAER_NOTA, as for
   * an unknown id, so an unknown id that is still listed is tried again, for up to the lock
   * timeout; then the error is a transient failure, and the coordinator retries.
   */
  private async finish(xa: XaSql, xid: Xid, decision: 'commit' | 'rollback'): Promise<void> {
    const giveUpAt = performance.now() + this.lockTimeoutMs;
    for (let pause = 10; ; pause = Math.min(2 * pause, 200)) {
      try {
        await this.driver.run(xa.finish(xid, decision));
        return;
      } catch (error) {
        if (!xa.isUnknownXid(error)) throw error;
      }
      if (!(await this.isPrepared(xa, xid))) return;
      if (performance.now() >= giveUpAt) throw new Error(`prepared transaction ${xid.name} is still held by the session that prepared it: ${decision} it again later`);
      await sleep(pause);
    }
  }
}
