import { DataSource } from 'typeorm';
import { dtxMigrations } from '@nest-dtx/sdk';
import { createTestDatabase, type TestDatabase } from './databases.js';

/** A fresh participant database with the SDK's barrier table and a small business table. */
export async function participantDatabase(prefix: string, businessDdl: string[]): Promise<{ db: TestDatabase; dataSource: DataSource }> {
  const db = await createTestDatabase(prefix);
  const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: [...dtxMigrations], extra: { max: 20 } });
  try {
    await dataSource.initialize();
    await dataSource.runMigrations();
    for (const ddl of businessDdl) await dataSource.query(ddl);
    return { db, dataSource };
  } catch (error) {
    // The caller gets neither: close and drop them here.
    if (dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
    await db.drop().catch(() => undefined);
    throw error;
  }
}
