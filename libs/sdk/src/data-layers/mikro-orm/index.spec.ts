/**
 * How mikroOrmDataLayer reads the dialect from MikroORM's platform classes (the real ones of
 * @mikro-orm/knex and @mikro-orm/postgresql, subclassed as the drivers subclass them), and the
 * drivers it refuses at construction. The layers on real databases: test/integration/data-layers/mikro-orm.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Platform } from '@mikro-orm/core';
// @mikro-orm/knex's, which the drivers re-export.
import { BaseSqlitePlatform, MySqlPlatform } from '@mikro-orm/mysql';
import { PostgreSqlPlatform } from '@mikro-orm/postgresql';
import { mikroOrmDataLayer, type MikroOrmSqlEntityManager } from './index.js';

// As @mikro-orm/mariadb, @mikro-orm/sqlite, @mikro-orm/libsql and @mikro-orm/mongodb declare theirs.
class MariaDbPlatform extends MySqlPlatform {}
class SqlitePlatform extends BaseSqlitePlatform {}
class LibSqlPlatform extends BaseSqlitePlatform {}
class MongoPlatform extends Platform {}

/** Only what the constructor reads: the platform (and, for a SQL EntityManager, execute). */
function entityManagerOn(platform: object, sql = true): MikroOrmSqlEntityManager {
  const em = {
    fork: () => em,
    transactional: () => Promise.reject(new Error('not used')),
    flush: () => Promise.reject(new Error('not used')),
    getPlatform: () => platform,
    ...(sql ? { execute: () => Promise.reject(new Error('not used')) } : {}),
  };
  return em as MikroOrmSqlEntityManager;
}

describe('mikroOrmDataLayer: the dialect', () => {
  it('is Postgres on PostgreSqlPlatform, MySQL/MariaDB on MySqlPlatform and MariaDbPlatform', () => {
    expect(mikroOrmDataLayer(entityManagerOn(new PostgreSqlPlatform())).description).toBe('MikroORM (Postgres)');
    expect(mikroOrmDataLayer(entityManagerOn(new MySqlPlatform())).description).toBe('MikroORM (MySQL/MariaDB)');
    expect(mikroOrmDataLayer({ em: entityManagerOn(new MariaDbPlatform()) }).description).toBe('MikroORM (MySQL/MariaDB)');
  });

  it('refuses SQLite and libSQL, and a driver that is not SQL, when it is made', () => {
    expect(() => mikroOrmDataLayer(entityManagerOn(new SqlitePlatform()))).toThrow(/SQLite is not supported/);
    expect(() => mikroOrmDataLayer(entityManagerOn(new LibSqlPlatform()))).toThrow(/SQLite is not supported/);
    expect(() => mikroOrmDataLayer(entityManagerOn(new MongoPlatform(), false))).toThrow(/needs a SQL driver.*MongoPlatform is not one/);
  });
});
