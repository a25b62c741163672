import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import type { Mode, Transport } from '@nest-dtx/protocol';
import type { ParticipantRecord, ParticipantRegistrationRecord } from './records.js';

interface ParticipantRow {
  name: string;
  transport: Transport;
  endpoint: string | null;
  host: string | null;
  port: number | null;
  publish: boolean;
  actions: { name: string; modes: Mode[] }[];
  owner_key_digest: Buffer | null;
  secret_generation: number;
  previous_secret_generation: number | null;
  previous_secret_until: Date | null;
  call_headers: Record<string, string>;
  max_in_flight: number | null;
  updated_at: Date;
}

const COLUMNS = `name, transport, endpoint, host, port, publish, actions, owner_key_digest, secret_generation,
  previous_secret_generation, previous_secret_until, call_headers, max_in_flight, updated_at`;

function toRecord(row: ParticipantRow): ParticipantRecord {
  return {
    name: row.name,
    transport: row.transport,
    endpoint: row.endpoint,
    host: row.host,
    port: row.port,
    publish: row.publish,
    actions: row.actions,
    ownerKeyDigest: row.owner_key_digest,
    secretGeneration: row.secret_generation,
    previousSecretGeneration: row.previous_secret_generation,
    previousSecretUntil: row.previous_secret_until,
    callHeaders: row.call_headers,
    maxInFlight: row.max_in_flight,
    updatedAt: row.updated_at,
  };
}

/** The participant registry's table and the coordinator's own secret (PROTOCOL.md 4, 5.5). */
@Injectable()
export class ParticipantStore {
  private readonly pool: pg.Pool;

  constructor(@InjectDataSource() db: DataSource) {
    // node-postgres directly, as TransactionStore does: TypeORM's query() shapes UPDATE ... RETURNING differently from INSERT.
    this.pool = (db.driver as unknown as { master: pg.Pool }).master;
  }

  private async rows(text: string, values: unknown[] = []): Promise<ParticipantRow[]> {
    return (await this.pool.query<ParticipantRow>(text, values)).rows;
  }

  /**
   * Registers or updates a participant in one statement. With `bindToKeys`, a name owned by
   * another key is left as it is and null comes back: the ownership check and the write are one
   * atomic upsert, so two keys racing for a new name cannot both win. An unowned name is
   * claimed by the key that registers it. Names are case-insensitive (a unique index on
   * lower(name)): another spelling updates the same row, which keeps its first spelling. A name
   * deleted before starts past its last secret generation (deleted_participants).
   */
  async register(registration: ParticipantRegistrationRecord, bindToKeys: boolean): Promise<ParticipantRecord | null> {
    const rows = await this.rows(
      `INSERT INTO participants (name, transport, endpoint, host, port, actions, call_headers, owner_key_digest, publish, secret_generation)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $10,
               coalesce((SELECT d.secret_generation + 1 FROM deleted_participants d WHERE d.lower_name = lower($1::varchar)), 1))
       ON CONFLICT ((lower(name))) DO UPDATE SET
         transport = EXCLUDED.transport, endpoint = EXCLUDED.endpoint, host = EXCLUDED.host, port = EXCLUDED.port,
         publish = EXCLUDED.publish, actions = EXCLUDED.actions, call_headers = EXCLUDED.call_headers,
         owner_key_digest = COALESCE(participants.owner_key_digest, EXCLUDED.owner_key_digest),
         updated_at = now()
       WHERE NOT $9::boolean OR participants.owner_key_digest IS NULL OR participants.owner_key_digest = EXCLUDED.owner_key_digest
       RETURNING ${COLUMNS}`,
      [
        registration.name,
        registration.transport,
        registration.endpoint,
        registration.host,
        registration.port,
        JSON.stringify(registration.actions),
        JSON.stringify(registration.callHeaders),
        registration.ownerKeyDigest,
        bindToKeys,
        registration.publish,
      ],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** The participant of that name in any case. */
  async find(name: string): Promise<ParticipantRecord | null> {
    const rows = await this.rows(`SELECT ${COLUMNS} FROM participants WHERE lower(name) = lower($1)`, [name]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async list(): Promise<ParticipantRecord[]> {
    const rows = await this.rows(`SELECT ${COLUMNS} FROM participants ORDER BY lower(name)`);
    return rows.map(toRecord);
  }

  /** Up to `limit` participants after the (lower-case) name `after`, in lower-case name order: a keyset page. */
  async page(after: string | null, limit: number): Promise<ParticipantRecord[]> {
    const rows = await this.rows(
      `SELECT ${COLUMNS} FROM participants WHERE $1::text IS NULL OR lower(name) > $1 ORDER BY lower(name) LIMIT $2`,
      [after, limit],
    );
    return rows.map(toRecord);
  }

  /** How many names a key owns (null: names no key owns, the count that applies without keys). */
  async countOwnedBy(ownerKeyDigest: Buffer | null): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM participants WHERE owner_key_digest IS NOT DISTINCT FROM $1::bytea`,
      [ownerKeyDigest],
    );
    return Number(rows[0].n);
  }

  /**
   * Deletes a participant unless a transaction that is not finished has a branch on it or asks
   * it msg's check-back: 'deleted', 'in_use', or 'missing'. Its secret generation is kept
   * (deleted_participants), so the name registered again gets a secret nobody saw before.
   */
  async delete(name: string): Promise<'deleted' | 'in_use' | 'missing'> {
    const { rows } = await this.pool.query<{ outcome: 'deleted' | 'in_use' | 'missing' }>(
      `WITH target AS (
         SELECT name, secret_generation FROM participants WHERE lower(name) = lower($1)
       ), in_use AS (
         SELECT EXISTS (
           SELECT 1 FROM global_transactions t
           WHERE t.status IN ('active', 'committing', 'rolling_back')
             AND (lower(t.check_participant) = lower($1)
                  OR EXISTS (SELECT 1 FROM branches b WHERE b.gid = t.gid AND lower(b.participant) = lower($1)))
         ) AS yes
       ), gone AS (
         DELETE FROM participants p USING target, in_use WHERE p.name = target.name AND NOT in_use.yes RETURNING p.name
       ), tombstone AS (
         INSERT INTO deleted_participants (lower_name, secret_generation)
         SELECT lower(target.name), target.secret_generation FROM target JOIN gone ON gone.name = target.name
         ON CONFLICT (lower_name) DO UPDATE SET secret_generation = GREATEST(deleted_participants.secret_generation, EXCLUDED.secret_generation), deleted_at = now()
       )
       SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM target) THEN 'missing'
                   WHEN EXISTS (SELECT 1 FROM gone) THEN 'deleted' ELSE 'in_use' END AS outcome`,
      [name],
    );
    return rows[0].outcome;
  }

  /**
   * A new secret generation. With `overlapMs` > 0 the current one stays valid, signed side by
   * side, for that long; 0 revokes it at once. Null when the name is not registered.
   */
  async rotateSecret(name: string, overlapMs: number): Promise<ParticipantRecord | null> {
    const rows = await this.rows(
      `UPDATE participants SET
         previous_secret_generation = CASE WHEN $2::bigint > 0 THEN secret_generation END,
         previous_secret_until = CASE WHEN $2::bigint > 0 THEN now() + $2::bigint * interval '1 millisecond' END,
         secret_generation = secret_generation + 1,
         updated_at = now()
       WHERE lower(name) = lower($1)
       RETURNING ${COLUMNS}`,
      [name, overlapMs],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /**
   * Frees a name from its key, so another key may register it, and revokes its secret: whoever
   * registers it next gets a secret the previous owner never saw.
   */
  async release(name: string): Promise<ParticipantRecord | null> {
    const rows = await this.rows(
      `UPDATE participants SET owner_key_digest = NULL, secret_generation = secret_generation + 1,
         previous_secret_generation = NULL, previous_secret_until = NULL, updated_at = now()
       WHERE lower(name) = lower($1)
       RETURNING ${COLUMNS}`,
      [name],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /**
   * The operator's ceiling on calls in flight to the participant (per instance); null clears it
   * (PARTICIPANT_MAX_IN_FLIGHT applies). Null when the name is not registered. A registration
   * never touches it.
   */
  async setMaxInFlight(name: string, maxInFlight: number | null): Promise<ParticipantRecord | null> {
    const rows = await this.rows(
      `UPDATE participants SET max_in_flight = $2::integer, updated_at = now()
       WHERE lower(name) = lower($1)
       RETURNING ${COLUMNS}`,
      [name, maxInFlight],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /**
   * The coordinator's signing secret kept in Postgres: `candidate` becomes it when there is
   * none yet; otherwise the one already there comes back. Every instance gets the same bytes.
   */
  async storedSigningSecret(candidate: Buffer): Promise<Buffer> {
    // The statement's snapshot predates a row another instance commits while this insert
    // waits on it (ON CONFLICT DO NOTHING then returns nothing, and the SELECT cannot see the
    // row yet): the next statement sees it.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const { rows } = await this.pool.query<{ value: Buffer }>(
        `WITH inserted AS (
           INSERT INTO coordinator_secrets (name, value) VALUES ('signing', $1) ON CONFLICT (name) DO NOTHING RETURNING value
         )
         SELECT value FROM inserted UNION ALL SELECT value FROM coordinator_secrets WHERE name = 'signing'
         LIMIT 1`,
        [candidate],
      );
      if (rows[0]) return rows[0].value;
    }
    throw new Error('coordinator_secrets holds no signing secret after writing one');
  }
}
