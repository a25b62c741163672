/**
 * The barrier conformance suite on MikroORM, on Postgres and on MariaDB (through the MySQL
 * driver): the business work persists a Ledger entity (an EntitySchema, no decorators) through
 * the phase's transactional EntityManager, flushed by `transactional`. Then what the adapter
 * adds to MikroORM's own behaviour: the flush at the end of `transactional` is inside the
 * barrier's transaction, every phase has an identity map of its own, `disableTransactions` does
 * not turn the barrier's transaction off, and the global EntityManager joins the phase's
 * transaction inside the business method.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntitySchema } from '@mikro-orm/core';
import { MikroORM as MySqlMikroORM } from '@mikro-orm/mysql';
// Both drivers' EntityManager is @mikro-orm/knex's SqlEntityManager, which each re-exports.
import { MikroORM as PostgreSqlMikroORM, type SqlEntityManager } from '@mikro-orm/postgresql';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import { atSchemaDdl, barrierTableDdl, BusinessFailure, type DtxDataLayer, type SqlDialect } from '@nest-dtx/sdk';
import { mikroOrmDataLayer } from '@nest-dtx/sdk/mikro-orm';
import { describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck } from './schema-check.js';
import { sqlTestDatabase, type SqlTestDatabase } from './sql-fixtures.js';

/** A row of the fixtures' ledger table (LEDGER_DDL). */
interface Ledger {
  id?: number;
  gid: string;
  phase: string;
}

const LedgerSchema = new EntitySchema<Ledger>({
  name: 'Ledger',
  tableName: 'ledger',
  properties: {
    id: { type: 'number', primary: true, autoincrement: true },
    gid: { type: 'string' },
    phase: { type: 'string' },
  },
});

const label = (dialect: SqlDialect) => (dialect === 'postgres' ? 'Postgres' : 'MariaDB');

type Orm = { em: SqlEntityManager; close(force?: boolean): Promise<void> };

async function ormOn(dialect: SqlDialect, url: string, extra: { disableTransactions?: boolean } = {}): Promise<Orm> {
  // The tables are sqlTestDatabase's: no schema generator, no database creation.
  const options = { clientUrl: url, entities: [LedgerSchema], ensureDatabase: false, pool: { min: 0, max: 12 }, ...extra };
  return dialect === 'postgres' ? PostgreSqlMikroORM.init(options) : MySqlMikroORM.init(options);
}

/** Records the phase through the ORM: a persisted entity, written by the flush. */
const record = (em: SqlEntityManager, gid: string, phase: string): Promise<void> => {
  em.persist(em.create(LedgerSchema, { gid, phase }));
  return Promise.resolve();
};

/**
 * Records, flushes (the INSERT really runs, inside the phase's transaction), then fails: the
 * row and the barrier's must both be rolled back. Without the flush there would be nothing to
 * roll back, and the case would prove nothing.
 */
const recordThenFail = async (em: SqlEntityManager, gid: string, error: Error): Promise<never> => {
  await record(em, gid, 'try');
  await em.flush();
  throw error;
};

const call = (gid: string, phase: 'try' | 'confirm' | 'cancel'): PhaseCallBody => ({ gid, branchId: 'b1', mode: 'tcc', action: 'pay', phase, payload: {} });

for (const dialect of ['postgres', 'mysql'] as const satisfies readonly SqlDialect[]) {
  describeBarrierConformance(`MikroORM (${label(dialect)})`, { rowLocks: true, retentionJob: true, at: dialect === 'postgres' }, async () => {
    const database = await sqlTestDatabase(dialect, `conf_mikro_${dialect}`);
    const orm = await ormOn(dialect, database.db.url);
    return {
      ...database,
      layer: mikroOrmDataLayer(orm, { lockTimeoutMs: 1000 }),
      record,
      refuse: (em, gid) => recordThenFail(em, gid, new BusinessFailure('no stock', { reason: 'out_of_stock' })),
      crash: (em, gid) => recordThenFail(em, gid, new Error('disk on fire')),
      async tearDown() {
        await orm.close(true);
        await database.drop();
      },
    };
  });

  describeSchemaCheck(`MikroORM (${label(dialect)})`, async () => {
    const database = await sqlTestDatabase(dialect, `schema_mikro_${dialect}`, false);
    const orm = await ormOn(dialect, database.db.url);
    return {
      database,
      layer: mikroOrmDataLayer(orm),
      fix: { barrier: `add a migration that runs barrierTableDdl('${dialect}') (@nest-dtx/sdk/mikro-orm) and run it`, at: 'run atSchemaDdl() in one too' },
      // What a MikroORM Migration of the SDK's DDL does (addSql of each statement).
      migrate: async () => {
        const em = orm.em.fork();
        for (const ddl of [...barrierTableDdl(dialect), ...(dialect === 'postgres' ? atSchemaDdl() : [])]) await em.execute(ddl);
      },
      record,
      tearDown: async () => {
        await orm.close(true);
        await database.drop();
      },
    };
  });

  describe(`MikroORM data layer (${label(dialect)}): the flush, the identity maps, the transactions`, () => {
    let database: SqlTestDatabase;
    let orm: Orm;
    let layer: DtxDataLayer<SqlEntityManager>;
    const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const id = (gid: string) => `${run}-${gid}`;

    beforeAll(async () => {
      database = await sqlTestDatabase(dialect, `mikro_${dialect}`);
      orm = await ormOn(dialect, database.db.url);
      // From the EntityManager this time, as an app holding only `em` would.
      layer = mikroOrmDataLayer(orm.em, { lockTimeoutMs: 1000 });
    });

    afterAll(async () => {
      await orm?.close(true);
      await database?.drop();
    });

    it('is described by its dialect, read from the driver', () => {
      expect(layer.description).toBe(`MikroORM (${dialect === 'postgres' ? 'Postgres' : 'MySQL/MariaDB'})`);
    });

    it('the flush at the end of transactional is inside the barrier’s transaction: a failing flush rolls the barrier row back', async () => {
      const first = id('flush-first');
      await layer.runPhase(call(first, 'try'), (em) => record(em, first, 'try'));
      const [row] = await orm.em.fork().find(LedgerSchema, { gid: first });
      const gid = id('flush-fails');
      // Not flushed by the work: the INSERT runs in transactional's own flush, after the
      // barrier's last statement, and fails there (the id is taken).
      const phase = layer.runPhase(call(gid, 'try'), (em) => {
        em.persist(em.create(LedgerSchema, { id: row.id, gid, phase: 'try' }));
        return Promise.resolve({ unflushed: true });
      });
      await expect(phase).rejects.toThrow(/duplicate|unique/i);
      expect(await database.barrierRows(gid)).toBe(0);
      expect(await database.effects(gid)).toEqual([]);
      // Nothing was kept: the same try goes through.
      expect(await layer.runPhase(call(gid, 'try'), (em) => record(em, gid, 'try'))).toMatchObject({ kind: 'ok', duplicate: false });
      expect(await database.effects(gid)).toEqual(['try']);
    });

    it('every phase has an EntityManager and an identity map of its own; the EntityManager given stays empty', async () => {
      // A long-lived EntityManager that is not the global one (which MikroORM never merges
      // into): a transactional run on it directly would merge every phase's entities back.
      const given = orm.em.fork();
      const ownLayer = mikroOrmDataLayer(given, { lockTimeoutMs: 1000 });
      const gid = id('identity');
      const handles: SqlEntityManager[] = [];
      const loaded: number[][] = [];
      for (const phase of ['try', 'confirm'] as const) {
        await ownLayer.runPhase(call(gid, phase), async (em) => {
          handles.push(em);
          const before = em.getUnitOfWork(false).getIdentityMap().keys().length;
          await em.find(LedgerSchema, { gid });
          loaded.push([before, em.getUnitOfWork(false).getIdentityMap().keys().length]);
          await record(em, gid, phase);
        });
      }
      expect(handles[0]).not.toBe(handles[1]);
      expect(handles).not.toContain(given);
      // The confirm starts empty and loads the try's row itself.
      expect(loaded).toEqual([
        [0, 0],
        [0, 1],
      ]);
      expect(given.getUnitOfWork(false).getIdentityMap().keys()).toEqual([]);
      expect(await database.effects(gid)).toEqual(['try', 'confirm']);
    });

    it('the global EntityManager, used inside the business method, joins the phase’s transaction', async () => {
      const gid = id('global-em');
      const outcome = await layer.runPhase(call(gid, 'try'), async () => {
        // As a NestJS service holding the injected EntityManager would write.
        await record(orm.em, gid, 'try');
        await orm.em.flush();
        throw new BusinessFailure('no stock');
      });
      expect(outcome).toMatchObject({ kind: 'failed', message: 'no stock' });
      expect(await database.effects(gid)).toEqual([]);
      expect(await database.barrierRows(gid)).toBe(0);
    });

    it('an ORM configured with disableTransactions still runs each phase in one transaction', async () => {
      const untransacted = await ormOn(dialect, database.db.url, { disableTransactions: true });
      try {
        const untransactedLayer = mikroOrmDataLayer(untransacted, { lockTimeoutMs: 1000 });
        const gid = id('no-transactions');
        const outcome = await untransactedLayer.runPhase(call(gid, 'try'), (em) => recordThenFail(em, gid, new BusinessFailure('no stock')));
        expect(outcome).toMatchObject({ kind: 'failed' });
        expect(await database.effects(gid)).toEqual([]);
        expect(await database.barrierRows(gid)).toBe(0);
      } finally {
        await untransacted.close(true);
      }
    });

    it('has no XA (prepared transactions): the participant module refuses XaAction at start-up', () => {
      expect(layer.xa).toBeUndefined();
    });
  });
}
