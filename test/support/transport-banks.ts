/**
 * The set-up of the end-to-end tests that run a bank on every participant transport: one
 * coordinator with Redis, RabbitMQ and NATS, and one account service per transport, each on a
 * database of its own.
 */
import pg from 'pg';
import {
  NATS_URL,
  RABBITMQ_URL,
  REDIS_URL,
  accountService,
  coordinator,
  type CoordinatorHandle,
  type ParticipantTransport,
  type ServiceHandle,
} from '../../scripts/lib/stack.js';
import { createTestDatabase, type TestDatabase } from './databases.js';

/** Every participant transport (PROTOCOL.md 4, and the broker transports of docs/transports.md). */
export const EVERY_TRANSPORT: readonly ParticipantTransport[] = ['http', 'tcp', 'redis', 'rabbitmq', 'nats'];

export interface TransportBanks {
  /** The coordinator's database first, then each bank's in the order of the transports. */
  databases: TestDatabase[];
  coord: CoordinatorHandle;
  banks: Map<ParticipantTransport, ServiceHandle>;
}

/** Variables on top of the set-up's own: the coordinator's (over its defaults below), and every bank's. */
export interface TransportBanksEnv {
  coordinator?: Record<string, string>;
  banks?: Record<string, string>;
}

/**
 * Starts the coordinator (short recovery, retry, lease and call times) and the banks, named by
 * `bankName`; `prefix` names the databases and the coordinator's process.
 */
export async function startTransportBanks(
  prefix: string,
  transports: readonly ParticipantTransport[],
  bankName: (t: ParticipantTransport) => string,
  env: TransportBanksEnv = {},
): Promise<TransportBanks> {
  const created = await Promise.allSettled([`${prefix}_coord`, ...transports.map((t) => `${prefix}_${t}`)].map((p) => createTestDatabase(p)));
  const databases = created.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []));
  let coord: CoordinatorHandle | undefined;
  const banks = new Map<ParticipantTransport, ServiceHandle>();
  try {
    const failed = created.find((c) => c.status === 'rejected');
    if (failed) throw failed.reason;
    coord = await coordinator(`${prefix}-coordinator`, databases[0].url, {
      REDIS_URL,
      RABBITMQ_URL,
      NATS_URL,
      RECOVERY_INTERVAL_MS: '200',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '500',
      LEASE_MS: '3000',
      CALL_TIMEOUT_MS: '1500',
      ...env.coordinator,
    });
    await coord.start();
    for (const [i, t] of transports.entries()) banks.set(t, await accountService(bankName(t), databases[i + 1].url, coord.url, t));
    await Promise.all([...banks.values()].map((b) => b.start(env.banks)));
    return { databases, coord, banks };
  } catch (error) {
    // The caller gets no handle to any of it: what was started and created is stopped and
    // dropped here, and the error is the caller's to report.
    await Promise.allSettled([...[...banks.values()].map((b) => b.process.kill()), coord?.process.kill()]);
    await Promise.allSettled(databases.map((d) => d.drop()));
    throw error;
  }
}

/** A transaction's history rows, oldest first, read from the coordinator's database. */
export async function historyOf<Row extends pg.QueryResultRow>(coordinatorDb: TestDatabase, gid: string): Promise<Row[]> {
  const db = new pg.Client({ connectionString: coordinatorDb.url });
  await db.connect();
  try {
    return (await db.query<Row>('SELECT type, branch_id, detail FROM transaction_events WHERE gid = $1 ORDER BY id', [gid])).rows;
  } finally {
    await db.end();
  }
}
