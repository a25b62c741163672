import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Signed calls and names bound to keys (PROTOCOL.md 4, 5.5).
 *
 * - `coordinator_secrets`: the coordinator's own signing secret when operators configure none
 *   (SIGNING_SECRET); the first instance to start writes it and every other instance reads the
 *   same row, so every instance derives the same participant secrets across restarts.
 * - `participants.owner_key_digest`: SHA-256 of the API key that first registered the name;
 *   another key cannot register it. NULL: unowned (registered without keys, or released).
 * - `secret_generation`: which derived secret the participant has now; rotating bumps it and
 *   keeps the previous generation valid (signed side by side) until `previous_secret_until`.
 * - `call_headers`: headers the participant asked to receive on every call (an API gateway's
 *   credentials); never listed.
 */
export class ParticipantTrust1763800000800 implements MigrationInterface {
  name = 'ParticipantTrust1763800000800';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE coordinator_secrets (
        name       varchar(64) PRIMARY KEY,
        value      bytea       NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`
      ALTER TABLE participants
        ADD COLUMN owner_key_digest           bytea       NULL,
        ADD COLUMN secret_generation          integer     NOT NULL DEFAULT 1,
        ADD COLUMN previous_secret_generation integer     NULL,
        ADD COLUMN previous_secret_until      timestamptz NULL,
        ADD COLUMN call_headers               jsonb       NOT NULL DEFAULT '{}'::jsonb`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`
      ALTER TABLE participants
        DROP COLUMN owner_key_digest, DROP COLUMN secret_generation, DROP COLUMN previous_secret_generation,
        DROP COLUMN previous_secret_until, DROP COLUMN call_headers`);
    await runner.query(`DROP TABLE coordinator_secrets`);
  }
}
