import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import mysql from 'mysql2/promise';
import { barrierTableDdl } from '@nest-dtx/sdk';

/** The bank's mysql2 pool (MariaDB or MySQL). */
export const MYSQL_POOL = Symbol('mariadb-bank:pool');

/** The bank's tables, and the SDK's barrier table next to them (a migration, in a real service). */
const SCHEMA = [
  ...barrierTableDdl('mysql'),
  `CREATE TABLE IF NOT EXISTS accounts (
     id      varchar(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
     balance bigint NOT NULL CHECK (balance >= 0),
     frozen  bigint NOT NULL DEFAULT 0 CHECK (frozen >= 0)
   ) ENGINE = InnoDB`,
  `CREATE TABLE IF NOT EXISTS pending_credits (
     gid        varchar(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
     branch_id  varchar(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
     account_id varchar(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
     amount     bigint NOT NULL,
     PRIMARY KEY (gid, branch_id)
   ) ENGINE = InnoDB`,
];

@Injectable()
class PoolCloser implements OnApplicationShutdown {
  constructor(@Inject(MYSQL_POOL) private readonly pool: mysql.Pool) {}

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}

/** The pool, its schema in place before anything uses it. Import the same instance wherever the pool is needed. */
@Module({})
export class DatabaseModule {
  static forUrl(url: string): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        {
          provide: MYSQL_POOL,
          useFactory: async () => {
            const pool = mysql.createPool({ uri: url, connectionLimit: 20 });
            for (const ddl of SCHEMA) await pool.query(ddl);
            return pool;
          },
        },
        PoolCloser,
      ],
      exports: [MYSQL_POOL],
    };
  }
}
