/**
 * The barrier conformance suite on Prisma 7 with its driver adapters, on Postgres
 * (@prisma/adapter-pg) and on MariaDB (@prisma/adapter-mariadb). The business work writes
 * through Prisma's own model API on the interactive transaction's client (`tx.ledger.create`),
 * so the suite's rollback cases prove that the business change and the barrier's raw rows share
 * one transaction.
 *
 * The clients are generated here, from test/fixtures/prisma/<provider>.prisma into its
 * gitignored generated/ folder, so that a clean clone needs only `npm ci`. Prisma's schema
 * engine (a binary downloaded on demand) is not used by `generate`, but the CLI insists on a path
 * to one: PRISMA_SCHEMA_ENGINE_BINARY points it at `true`, so that no download is tried.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaMariaDb } from '@prisma/adapter-mariadb';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type DtxDataLayer, type SqlDialect } from '@nest-dtx/sdk';
import { prismaDataLayer, type PrismaClientLike, type PrismaTransactionClientLike } from '@nest-dtx/sdk/prisma';
import { describeBarrierConformance } from './conformance.js';
import { describeSchemaCheck, migrateWithDdl } from './schema-check.js';
import { sqlFixture, sqlTestDatabase } from './sql-fixtures.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = join(root, 'test/fixtures/prisma');

/** The part of the generated transaction client the fixture uses: typed here, as the generated types exist only once the test has run `prisma generate`. */
type LedgerTx = PrismaTransactionClientLike & {
  ledger: { create(args: { data: { gid: string; phase: string } }): PromiseLike<unknown> };
};
interface GeneratedClient extends PrismaClientLike<LedgerTx> {
  $disconnect(): Promise<void>;
}
interface GeneratedModule {
  PrismaClient: new (options: { adapter: PrismaPg | PrismaMariaDb }) => GeneratedClient;
}

const provider = (dialect: SqlDialect) => (dialect === 'postgres' ? 'postgresql' : 'mysql');

async function generatedClient(dialect: SqlDialect): Promise<GeneratedModule> {
  const schema = join(fixtures, `${provider(dialect)}.prisma`);
  const engine = ['/bin/true', '/usr/bin/true'].find((path) => existsSync(path));
  await promisify(execFile)(join(root, 'node_modules/.bin/prisma'), ['generate', '--schema', schema], {
    cwd: root,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? engine, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  });
  // A path in a variable: the compiler leaves the import untyped (the file may not exist yet); vitest compiles it.
  const client = join(fixtures, 'generated', provider(dialect), 'client.ts');
  return (await import(client)) as GeneratedModule;
}

function adapterFor(dialect: SqlDialect, url: string): PrismaPg | PrismaMariaDb {
  // Room for the suite's ten concurrent calls, each holding a connection for its transaction.
  if (dialect === 'postgres') return new PrismaPg({ connectionString: url, max: 12 });
  const { hostname, port, username, password, pathname } = new URL(url);
  return new PrismaMariaDb({
    host: hostname,
    port: Number(port || 3306),
    user: decodeURIComponent(username),
    password: decodeURIComponent(password),
    database: pathname.slice(1),
    connectionLimit: 12,
  });
}

// Prisma's own API on the transaction's client, not raw SQL.
const record = async (tx: LedgerTx, gid: string, phase: string) => void (await tx.ledger.create({ data: { gid, phase } }));

for (const dialect of ['postgres', 'mysql'] as const satisfies readonly SqlDialect[]) {
  describeBarrierConformance(`Prisma (${dialect === 'postgres' ? 'Postgres' : 'MariaDB'})`, { rowLocks: true, retentionJob: true, at: dialect === 'postgres' }, async () => {
    const { PrismaClient } = await generatedClient(dialect);
    const database = await sqlTestDatabase(dialect, `conf_prisma_${dialect}`);
    const prisma = new PrismaClient({ adapter: adapterFor(dialect, database.db.url) });
    return sqlFixture(database, prismaDataLayer(prisma, { dialect, lockTimeoutMs: 1000 }), record, () => prisma.$disconnect());
  });

  describeSchemaCheck(`Prisma (${dialect === 'postgres' ? 'Postgres' : 'MariaDB'})`, async () => {
    const { PrismaClient } = await generatedClient(dialect);
    const database = await sqlTestDatabase(dialect, `schema_prisma_${dialect}`, false);
    const prisma = new PrismaClient({ adapter: adapterFor(dialect, database.db.url) });
    return {
      database,
      layer: prismaDataLayer(prisma, { dialect }),
      fix: {
        barrier: `add a migration.sql of barrierTableDdl('${dialect}') (@nest-dtx/sdk/prisma) and run prisma migrate deploy`,
        at: 'add one of atSchemaDdl() the same way',
      },
      // The SQL of the migration.sql files (prisma migrate deploy needs Prisma's schema engine, which the tests do not download).
      migrate: () => migrateWithDdl(database),
      record,
      tearDown: async () => {
        await prisma.$disconnect();
        await database.drop();
      },
    };
  });
}

// Type-level: business methods get the client's own transaction client type, inferred from the
// callback of its interactive `$transaction` (a generated client has the batch overload first,
// the interactive one last). Checked by tsc (the CI's typecheck), not at run time.
{
  interface Tx extends PrismaTransactionClientLike {
    wallet: { update(args: { where: { id: number } }): Promise<unknown> };
  }
  interface Client extends PrismaTransactionClientLike {
    $transaction<P extends Promise<unknown>[]>(batch: [...P], options?: { maxWait?: number }): Promise<unknown[]>;
    $transaction<R>(work: (tx: Tx) => Promise<R>, options?: { maxWait?: number; timeout?: number; isolationLevel?: 'Serializable' }): Promise<R>;
  }
  const layerOf = (client: Client) => prismaDataLayer(client, { dialect: 'postgres' });
  expectTypeOf(layerOf).returns.toEqualTypeOf<DtxDataLayer<Tx>>();
}

describe('prismaDataLayer options', () => {
  it('refuses a transaction timeout that the lock timeout would outlast, and a dialect it does not speak', () => {
    const client = {} as GeneratedClient;
    expect(() => prismaDataLayer(client, { dialect: 'postgres', lockTimeoutMs: 5000, transactionOptions: { timeout: 5000 } })).toThrow(
      /timeout \(5000 ms\) must be above lockTimeoutMs \(5000 ms\)/,
    );
    expect(() => prismaDataLayer(client, { dialect: 'sqlite' as SqlDialect })).toThrow(/dialect must be 'postgres' or 'mysql'/);
  });
});
