import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Transactions owned by the key that began them, and participant names without case.
 *
 * - `global_transactions.owner_key_digest`: SHA-256 of the API key that began the transaction
 *   (as `participants.owner_key_digest`: the digest survives reordering API_KEYS, which the
 *   positional `key#n` does not). With OWNER_SCOPED_KEYS, another client key cannot see it.
 *   NULL: begun without keys or before this upgrade; any client key may use it, so an upgrade
 *   takes no client's in-flight transactions away from it.
 * - `participants`: `Bank-A` and `bank-a` are one participant. Names keep the spelling of their
 *   first registration; a unique index on lower(name) makes every other spelling the same row.
 *   A registry that already holds two spellings of one name cannot be merged silently (which
 *   one's endpoint and owner win?): the migration stops and names them.
 * - `deleted_participants`: the last secret generation of each deleted name, so a name
 *   registered again after DELETE /v1/participants/{name} (maybe by another key) starts past
 *   it and never gets a derived secret its previous owner knew.
 */
export class OwnersAndNames1763800001200 implements MigrationInterface {
  name = 'OwnersAndNames1763800001200';

  async up(runner: QueryRunner): Promise<void> {
    const duplicates = (await runner.query(
      `SELECT string_agg(name, ', ' ORDER BY created_at, name) AS names FROM participants GROUP BY lower(name) HAVING count(*) > 1`,
    )) as { names: string }[];
    if (duplicates.length > 0) {
      throw new Error(
        `participant names that differ only in case must be merged before this upgrade: ${duplicates.map((d) => `{${d.names}}`).join(' ')}; ` +
          'keep one of each group (DELETE FROM participants WHERE name = ...) and run the migrations again',
      );
    }
    await runner.query(`CREATE UNIQUE INDEX participants_lower_name ON participants (lower(name))`);
    await runner.query(`ALTER TABLE global_transactions ADD COLUMN owner_key_digest bytea NULL`);
    await runner.query(`
      CREATE TABLE deleted_participants (
        lower_name        varchar(64) PRIMARY KEY,
        secret_generation integer     NOT NULL,
        deleted_at        timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE deleted_participants`);
    await runner.query(`ALTER TABLE global_transactions DROP COLUMN owner_key_digest`);
    await runner.query(`DROP INDEX participants_lower_name`);
  }
}
