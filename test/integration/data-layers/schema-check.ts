/**
 * The schema check on every SQL data layer (DtxDataLayer.checkSchema, ParticipantSchema),
 * against its real database: each adapter's test file gives its layer on a database that has
 * only the business table (none of the SDK's tables), the fix its start-up line must name, and
 * the migration an app using that library would run. Then:
 * - the check names the missing table, the database and the fix; a participant refuses to start
 *   with that one line (schemaCheck `fail`), or starts unhealthy with it (`warn`);
 * - a phase (barrier, AT, XA) fails with DtxSchemaError naming it, whatever wrapper the library
 *   puts around the driver's error; an error of the app's own table passes through as it came;
 * - once the migration ran, the check passes, the participant starts, and under `warn` the one
 *   that was waiting goes on (on Postgres, it then installs its AT triggers);
 * - a column dropped after start is named.
 */
import { randomBytes } from 'node:crypto';
import { Injectable, Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSigningSecret } from '@nest-dtx/protocol';
import {
  AtAction,
  atSchemaDdl,
  barrierTableDdl,
  DtxParticipantHealthIndicator,
  DtxParticipantModule,
  DtxSchemaError,
  SagaAction,
  TransactionParticipant,
  type DtxDataLayer,
  type ParticipantModuleOptions,
} from '@nest-dtx/sdk';
import { CapturingLogger } from '../../support/signed-participant.js';
import { call } from './conformance.js';
import type { SqlTestDatabase } from './sql-fixtures.js';

/** The SDK's schema made from its DDL (barrierTableDdl, and atSchemaDdl on Postgres): what a migration of an app on pg, mysql2, Prisma, drizzle or MikroORM runs. */
export function migrateWithDdl(database: SqlTestDatabase): Promise<void> {
  return database.exec(...barrierTableDdl(database.dialect), ...(database.dialect === 'postgres' ? atSchemaDdl() : []));
}

export interface SchemaCheckFixture<Tx> {
  /** A database with the business table `ledger` and none of the SDK's tables (sqlTestDatabase(..., false)). */
  database: SqlTestDatabase;
  layer: DtxDataLayer<Tx>;
  /** The fixes the line must name, word for word. */
  fix: { barrier: string; at?: string };
  /** Makes the SDK's schema the way an app on this library does (barrier, and AT on Postgres). */
  migrate(): Promise<void>;
  /** Business work that records the phase through the handle (the ledger table). */
  record(tx: Tx, gid: string, phase: string): Promise<void>;
  /** Closes the library's connections, then drops the database. */
  tearDown(): Promise<void>;
}

const AT_MISSING = 'tables dtx_barrier, dtx_at_undo, dtx_at_lock and functions dtx_at_row_key, dtx_at_lock_holder, dtx_at_capture, dtx_at_refuse_truncate, dtx_at_undo_branch';

@Injectable()
@TransactionParticipant()
class Payments {
  @SagaAction({ name: 'pay', compensate: 'refund' })
  pay(): null {
    return null;
  }

  refund(): null {
    return null;
  }
}

@Injectable()
@TransactionParticipant()
class Debits {
  @AtAction({ name: 'debit' })
  debit(): null {
    return null;
  }
}

@Module({})
class SchemaCheckApp {
  static with(options: ParticipantModuleOptions, at: boolean): DynamicModule {
    return { module: SchemaCheckApp, imports: [DtxParticipantModule.forRoot(options)], providers: [Payments, ...(at ? [Debits] : [])] };
  }
}

export function describeSchemaCheck<Tx>(name: string, setUp: () => Promise<SchemaCheckFixture<Tx>>): void {
  describe(`schema check: ${name}`, () => {
    let f: SchemaCheckFixture<Tx>;
    let at: boolean;
    const apps: INestApplication[] = [];
    const run = randomBytes(3).toString('hex');
    const id = (gid: string) => `${run}-${gid}`;

    /** A participant on the layer, not registering (no coordinator needed), with an AT action where the layer has AT mode. */
    async function participant(schemaCheck: 'fail' | 'warn' | undefined): Promise<{ app: INestApplication; logger: CapturingLogger; started: Promise<void> }> {
      const logger = new CapturingLogger();
      const options: ParticipantModuleOptions = {
        name: `schema-${run}`,
        coordinatorUrl: 'http://127.0.0.1:1',
        publicUrl: 'http://127.0.0.1:1',
        register: false,
        signingSecret: formatSigningSecret(randomBytes(32)),
        dataLayer: f.layer,
        ...(at ? { at: { tables: ['ledger'] } } : {}),
        ...(schemaCheck ? { schemaCheck } : {}),
      };
      const app = await NestFactory.create(SchemaCheckApp.with(options, at), { logger, abortOnError: false });
      apps.push(app);
      return { app, logger, started: app.init().then(() => undefined) };
    }

    const health = async (app: INestApplication) => (await app.get(DtxParticipantHealthIndicator, { strict: false }).isHealthy('dtx', { timeoutMs: 200 })).dtx;
    const fixes = () => [...new Set([f.fix.barrier, ...(at ? [f.fix.at ?? f.fix.barrier] : [])])].join('; ');
    /** The line for a database without the SDK's schema, as the participant needs it. */
    const missingAll = () => `${at ? AT_MISSING : 'table dtx_barrier'} ${at ? 'are' : 'is'} missing in database ${f.database.db.name}: ${fixes()}`;
    const missingBarrier = () => `table dtx_barrier is missing in database ${f.database.db.name}: ${f.fix.barrier}`;

    let waiting: { app: INestApplication; logger: CapturingLogger };

    beforeAll(async () => {
      f = await setUp();
      at = f.layer.at !== undefined;
    });

    afterAll(async () => {
      for (const app of apps) await app.close().catch(() => undefined);
      await f?.tearDown();
    });

    it('names what is missing, where, and the migration that makes it', async () => {
      expect(await f.layer.checkSchema!({ at: false })).toBe(missingBarrier());
      expect(await f.layer.checkSchema!({ at: true })).toBe(missingAll());
    });

    it('refuses to start a participant, in that one line', async () => {
      const { started } = await participant(undefined);
      await expect(started).rejects.toThrow(new Error(`participant schema-${run}: ${missingAll()}`));
    });

    it('under schemaCheck warn: starts, says it once, and its health is down with the reason', async () => {
      const { app, logger, started } = await participant('warn');
      await started;
      waiting = { app, logger };
      expect(logger.lines.filter((line) => line.message.includes('missing in database'))).toEqual([
        {
          level: 'error',
          message: `participant schema-${run}: ${missingAll()} (schemaCheck is warn: not registered until it is there, checked again every 5 s)`,
        },
      ]);
      expect(await health(app)).toEqual({ status: 'down', participant: `schema-${run}`, reason: missingAll() });
    });

    it('a phase fails with DtxSchemaError naming the table, through whatever the library wraps the driver’s error in', async () => {
      const phase = f.layer.runPhase(call(id('no-table'), 'try'), (tx) => f.record(tx, id('no-table'), 'try'));
      await expect(phase).rejects.toBeInstanceOf(DtxSchemaError);
      await expect(phase).rejects.toThrow(missingBarrier());
      if (at) {
        const prepare = f.layer.at!.prepare(call(id('no-at'), 'prepare', '2pc'), (tx) => f.record(tx, id('no-at'), 'prepare'), { lockWaitMs: 100 });
        await expect(prepare).rejects.toThrow(new DtxSchemaError(missingAll()));
      }
      if (f.layer.xa) {
        // XA keeps its bookkeeping in the barrier table too.
        const xa = f.layer.xa;
        await expect(xa.prepare('schema', call(id('no-xa'), 'prepare', '2pc'), (tx) => f.record(tx, id('no-xa'), 'prepare'))).rejects.toThrow(new DtxSchemaError(missingBarrier()));
        await expect(xa.rollback('schema', call(id('no-xa'), 'rollback', '2pc'))).rejects.toThrow(new DtxSchemaError(missingBarrier()));
        expect(await xa.listOwn('schema')).toEqual([]);
      }
      await expect(f.layer.deleteExpiredBarrierRows(1000, 10)).rejects.toThrow(missingBarrier());
    });

    it('once the migration ran: the check passes, a participant starts, and the one that waited goes on', async () => {
      await f.migrate();
      expect(await f.layer.checkSchema!({ at: true })).toBeNull();
      // The health check looks again: the schema is no longer the reason (the coordinator is, here: none answers).
      expect((await health(waiting.app)).reason).toMatch(/^coordinator unreachable/);
      expect(waiting.logger.lines.map((line) => line.message)).toContain(`the SDK's tables are there now in ${f.layer.description}`);
      if (at) {
        // Installed now that AT's functions are there.
        for (let polls = 0; !waiting.logger.lines.some((line) => line.message.startsWith('AT tables ')); polls++) {
          if (polls > 100) throw new Error('the waiting participant never installed its AT triggers');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(waiting.logger.lines.map((line) => line.message)).toContain('AT tables public.ledger (triggers installed on public.ledger)');
      }
      // (Nest's logger is process-wide: the next app's lines go to its own logger.)
      await (await participant(undefined)).started;
      expect(await f.layer.runPhase(call(id('migrated'), 'try'), (tx) => f.record(tx, id('migrated'), 'try'))).toMatchObject({ kind: 'ok', duplicate: false });
    });

    it('an app’s own table missing is the app’s error, not the SDK’s', async () => {
      await f.database.exec('DROP TABLE ledger');
      const phase = f.layer.runPhase(call(id('no-ledger'), 'try'), (tx) => f.record(tx, id('no-ledger'), 'try'));
      await expect(phase).rejects.toThrow(/ledger/);
      await expect(phase).rejects.not.toBeInstanceOf(DtxSchemaError);
    });

    it('names a column dropped after start, at the check and at the next phase that uses it', async () => {
      await f.database.exec('ALTER TABLE dtx_barrier DROP COLUMN result');
      const line = `column dtx_barrier.result is missing in database ${f.database.db.name}: ${f.fix.barrier}`;
      expect(await f.layer.checkSchema!({ at: false })).toBe(line);
      // The try stores its result in that column.
      await expect(f.layer.runPhase(call(id('no-column'), 'try'), () => Promise.resolve({ stored: false }))).rejects.toThrow(new DtxSchemaError(line));
    });
  });
}
