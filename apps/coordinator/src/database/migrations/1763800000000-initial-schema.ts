import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The transaction log: global transactions, branches, event history, participants. */
export class InitialSchema1763800000000 implements MigrationInterface {
  name = 'InitialSchema1763800000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE global_transactions (
        gid             varchar(128) PRIMARY KEY,
        mode            varchar(8)   NOT NULL CHECK (mode IN ('tcc', '2pc', 'saga')),
        status          varchar(16)  NOT NULL CHECK (status IN ('active', 'committing', 'committed', 'rolling_back', 'rolled_back')),
        reason          varchar(16)  NULL CHECK (reason IN ('client', 'timeout', 'branch_failed', 'admin')),
        one_shot        boolean      NOT NULL DEFAULT false,
        concurrent      boolean      NOT NULL DEFAULT false,
        request_hash    varchar(64)  NOT NULL,
        metadata        jsonb        NOT NULL DEFAULT '{}'::jsonb,
        timeout_ms      integer      NOT NULL,
        deadline        timestamptz  NOT NULL,
        version         integer      NOT NULL DEFAULT 1,
        attempts        integer      NOT NULL DEFAULT 0,
        needs_attention boolean      NOT NULL DEFAULT false,
        next_attempt_at timestamptz  NULL,
        lease_owner     varchar(128) NULL,
        lease_until     timestamptz  NULL,
        created_at      timestamptz  NOT NULL DEFAULT now(),
        updated_at      timestamptz  NOT NULL DEFAULT now()
      )`);
    // Recovery claims due rows through this index; terminal rows (NULL) stay out of it.
    await runner.query(`CREATE INDEX global_transactions_due_idx ON global_transactions (next_attempt_at) WHERE next_attempt_at IS NOT NULL`);
    await runner.query(`CREATE INDEX global_transactions_created_idx ON global_transactions (created_at)`);
    await runner.query(`
      CREATE TABLE branches (
        gid         varchar(128) NOT NULL REFERENCES global_transactions (gid) ON DELETE CASCADE,
        branch_id   varchar(128) NOT NULL,
        seq         integer      NOT NULL,
        participant varchar(64)  NOT NULL,
        action      varchar(64)  NOT NULL,
        payload     jsonb        NOT NULL DEFAULT '{}'::jsonb,
        depends_on  jsonb        NOT NULL DEFAULT '[]'::jsonb,
        status      varchar(16)  NOT NULL CHECK (status IN ('pending', 'prepared', 'failed', 'committed', 'rolled_back')),
        attempts    integer      NOT NULL DEFAULT 0,
        last_error  jsonb        NULL,
        result      jsonb        NULL,
        created_at  timestamptz  NOT NULL DEFAULT now(),
        updated_at  timestamptz  NOT NULL DEFAULT now(),
        PRIMARY KEY (gid, branch_id)
      )`);
    await runner.query(`
      CREATE TABLE transaction_events (
        id          bigserial    PRIMARY KEY,
        gid         varchar(128) NOT NULL,
        at          timestamptz  NOT NULL DEFAULT clock_timestamp(),
        type        varchar(32)  NOT NULL,
        branch_id   varchar(128) NULL,
        from_status varchar(16)  NULL,
        to_status   varchar(16)  NULL,
        detail      jsonb        NULL
      )`);
    await runner.query(`CREATE INDEX transaction_events_gid_idx ON transaction_events (gid, id)`);
    await runner.query(`
      CREATE TABLE participants (
        name       varchar(64)   PRIMARY KEY,
        transport  varchar(8)    NOT NULL CHECK (transport IN ('http', 'tcp', 'redis')),
        endpoint   varchar(2048) NULL,
        host       varchar(255)  NULL,
        port       integer       NULL,
        actions    jsonb         NOT NULL,
        created_at timestamptz   NOT NULL DEFAULT now(),
        updated_at timestamptz   NOT NULL DEFAULT now()
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE participants`);
    await runner.query(`DROP TABLE transaction_events`);
    await runner.query(`DROP TABLE branches`);
    await runner.query(`DROP TABLE global_transactions`);
  }
}
