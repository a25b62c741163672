/**
 * Where the jepsen suite learns when each lease was taken. The coordinator records no event for
 * a claim (claimDue bumps `version` and sets `lease_owner`/`lease_until` in place), so the suite
 * installs, in its own test database, a trigger that logs every change of a transaction's
 * version with the time Postgres made it (clock_timestamp(), the machine's real clock): who
 * holds the lease after it, until when, and whether it was a claim (a claim leaves `updated_at`
 * as it was; every other write sets it).
 */
import type pg from 'pg';

export interface VersionRow {
  gid: string;
  version: number;
  leaseOwner: string | null;
  /** ms since the epoch, Postgres time. */
  leaseUntil: number | null;
  claim: boolean;
  status: string;
  at: number;
}

export const INSTALL_LEASE_LOG = `
CREATE TABLE IF NOT EXISTS jepsen_versions (
  id bigserial PRIMARY KEY,
  gid text NOT NULL,
  version int NOT NULL,
  lease_owner text,
  lease_until timestamptz,
  claim boolean NOT NULL,
  status text NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION jepsen_log_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  INSERT INTO jepsen_versions (gid, version, lease_owner, lease_until, claim, status)
  VALUES (NEW.gid, NEW.version, NEW.lease_owner, NEW.lease_until,
          TG_OP = 'UPDATE' AND NEW.lease_owner IS NOT NULL AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at,
          NEW.status);
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS jepsen_version_insert ON global_transactions;
DROP TRIGGER IF EXISTS jepsen_version_update ON global_transactions;
CREATE TRIGGER jepsen_version_insert AFTER INSERT ON global_transactions FOR EACH ROW EXECUTE FUNCTION jepsen_log_version();
CREATE TRIGGER jepsen_version_update AFTER UPDATE ON global_transactions FOR EACH ROW
  WHEN (NEW.version IS DISTINCT FROM OLD.version OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner)
  EXECUTE FUNCTION jepsen_log_version();
`;

export async function readLeaseLog(db: pg.Client): Promise<VersionRow[]> {
  const { rows } = await db.query<{ gid: string; version: number; lease_owner: string | null; lease_until: Date | null; claim: boolean; status: string; at: Date }>(
    `SELECT gid, version, lease_owner, lease_until, claim, status, at FROM jepsen_versions ORDER BY id`,
  );
  return rows.map((r) => ({ gid: r.gid, version: r.version, leaseOwner: r.lease_owner, leaseUntil: r.lease_until?.getTime() ?? null, claim: r.claim, status: r.status, at: r.at.getTime() }));
}
