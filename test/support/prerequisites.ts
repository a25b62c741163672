/**
 * What the integration and end-to-end tests need on the machine besides Node, each with how to
 * check it and the commands (Debian) that install and start it. The global set-up
 * (test/support/global-setup.ts) checks them all before any test runs and reports every missing
 * one in a single error, rather than letting dozens of tests fail one by one on the same cause.
 *
 * Postgres is not in this list: the test run starts its own (test/support/test-postgres.ts).
 * Chromium is not either: only the browser tests need it, and without it they fail alone
 * (test/support/browser.ts) while everything else runs.
 */
import { connect } from 'node:net';
import { libfaketime } from '../../scripts/lib/jepsen/requirements.js';
import { haveProgram } from '../../scripts/lib/jepsen/system.js';
import { NATS_URL, RABBITMQ_URL, REDIS_URL } from '../../scripts/lib/stack.js';
import { MARIADB_ADMIN_URL } from './databases.js';

/** The Vitest projects that need services (the unit project needs none). */
export type Tier = 'integration' | 'e2e';

export interface Prerequisite {
  name: string;
  /** Which tests need it, for the reader of the error. */
  usedBy: string;
  tiers: readonly Tier[];
  /** Resolves with what is wrong, or null when it is there. */
  check(): Promise<string | null>;
  /** Shell commands, run as root, that install it and start it. */
  fix: readonly string[];
}

/** Debian's Postgres major version, the one pg_createcluster makes clusters of in the tests that build their own. */
export const CLUSTER_POSTGRES_VERSION = '15';

const CHECK_TIMEOUT_MS = 3_000;

function missingPrograms(...names: string[]): string | null {
  const missing = names.filter((name) => !haveProgram(name));
  return missing.length > 0 ? `not installed: ${missing.join(', ')}` : null;
}

/**
 * Connects to a service's port, sends `send` if given, and resolves with what it says, once that
 * holds `untilText` (with none, its first bytes); rejects with why it could not connect.
 */
function greeting(url: string, defaultPort: number, { send, untilText }: { send?: string; untilText?: string }): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || defaultPort) });
    const fail = (reason: string) => {
      socket.destroy();
      reject(new Error(reason));
    };
    socket.setTimeout(CHECK_TIMEOUT_MS, () => fail(`no answer from ${hostname}:${port || defaultPort} within ${CHECK_TIMEOUT_MS} ms`));
    socket.once('error', (error: NodeJS.ErrnoException) => fail(`${hostname}:${port || defaultPort}: ${error.code ?? error.message}`));
    socket.once('end', () => fail(`${hostname}:${port || defaultPort} closed the connection`));
    socket.once('connect', () => {
      if (send !== undefined) socket.write(send);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (untilText === undefined || received.includes(untilText)) {
        socket.destroy();
        resolve(received);
      }
    });
  });
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A connection URL without its password, for messages. */
export function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

/** The problems found, in one line; null when there are none. */
const allOf = (...problems: (string | null)[]): string | null => problems.filter((p) => p !== null).join('; ') || null;

async function redisAnswers(): Promise<string | null> {
  try {
    const answer = await greeting(REDIS_URL, 6379, { send: 'PING\r\n', untilText: '\r\n' });
    return answer.startsWith('+PONG') ? null : `${redacted(REDIS_URL)} answered PING with ${JSON.stringify(answer.trim())}`;
  } catch (error) {
    return `nothing answers at ${redacted(REDIS_URL)} (${reason(error)})`;
  }
}

async function mariadbAnswers(): Promise<string | null> {
  const { default: mysql } = await import('mysql2/promise');
  try {
    const connection = await mysql.createConnection({ uri: MARIADB_ADMIN_URL, connectTimeout: CHECK_TIMEOUT_MS });
    await connection.end();
    return null;
  } catch (error) {
    return `cannot log in at ${redacted(MARIADB_ADMIN_URL)} (${reason(error)})`;
  }
}

async function rabbitmqAnswers(): Promise<string | null> {
  try {
    // The AMQP 0-9-1 protocol header; a broker answers with its Connection.Start frame (type 1).
    const answer = await greeting(RABBITMQ_URL, 5672, { send: 'AMQP\x00\x00\x09\x01' });
    return answer.length > 0 ? null : `${redacted(RABBITMQ_URL)} said nothing to an AMQP client`;
  } catch (error) {
    return `nothing answers at ${redacted(RABBITMQ_URL)} (${reason(error)})`;
  }
}

async function natsAnswers(): Promise<string | null> {
  try {
    // A NATS server greets every client with one INFO line of JSON, which says whether JetStream is on.
    const line = (await greeting(NATS_URL, 4222, { untilText: '\r\n' })).split('\r\n')[0];
    if (!line.startsWith('INFO ')) return `${redacted(NATS_URL)} is no NATS server (it said ${JSON.stringify(line.slice(0, 60))})`;
    const info = JSON.parse(line.slice('INFO '.length)) as { jetstream?: boolean };
    return info.jetstream === true ? null : `the NATS server at ${redacted(NATS_URL)} runs without JetStream (start it with -js)`;
  } catch (error) {
    return `nothing answers at ${redacted(NATS_URL)} (${reason(error)})`;
  }
}

export const PREREQUISITES: readonly Prerequisite[] = [
  {
    name: 'Redis (a server at TEST_REDIS_URL, default redis://127.0.0.1:6379, and the redis-server program)',
    usedBy: 'the Redis bus, transport and data layer; redis-loss and the fault suite start redis-server themselves',
    tiers: ['integration', 'e2e'],
    check: async () => allOf(missingPrograms('redis-server'), await redisAnswers()),
    fix: ['apt-get install -y redis-server', 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'],
  },
  {
    name: 'MariaDB (at TEST_MARIADB_URL, default mysql://root@127.0.0.1:3306/test: root over TCP without a password)',
    usedBy: 'the MySQL/MariaDB data layers and XA; the polyglot demo',
    tiers: ['integration', 'e2e'],
    check: mariadbAnswers,
    fix: [
      'apt-get install -y mariadb-server',
      'mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld && (mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 &)',
      `mariadb -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS test;"`,
    ],
  },
  {
    name: 'RabbitMQ (at TEST_RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672)',
    usedBy: 'the rabbitmq participant transport and msg branches',
    tiers: ['integration', 'e2e'],
    check: rabbitmqAnswers,
    fix: ['apt-get install -y rabbitmq-server', 'rabbitmq-server -detached'],
  },
  {
    name: 'NATS with JetStream (at TEST_NATS_URL, default nats://127.0.0.1:4222)',
    usedBy: 'the nats participant transport and msg branches',
    tiers: ['integration', 'e2e'],
    check: natsAnswers,
    fix: ['apt-get install -y nats-server', 'mkdir -p /var/lib/nats-server && (nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server &)'],
  },
  {
    name: `Debian's Postgres ${CLUSTER_POSTGRES_VERSION} server and cluster tools (pg_createcluster, pg_ctlcluster, pg_dropcluster)`,
    usedBy: 'database-outage, pg-failover and the fault suite, which build Postgres clusters of their own',
    tiers: ['integration', 'e2e'],
    check: () => Promise.resolve(missingPrograms('pg_createcluster', 'pg_ctlcluster', 'pg_dropcluster', 'pg_lsclusters', `/usr/lib/postgresql/${CLUSTER_POSTGRES_VERSION}/bin/postgres`)),
    fix: [`apt-get install -y postgresql-${CLUSTER_POSTGRES_VERSION} postgresql-common`],
  },
  {
    name: 'HAProxy',
    usedBy: 'pg-failover and the fault suite\'s failover (the proxy in front of the replicated Postgres)',
    tiers: ['integration', 'e2e'],
    check: () => Promise.resolve(missingPrograms('haproxy')),
    fix: ['apt-get install -y haproxy'],
  },
  {
    name: 'spin and a C compiler',
    usedBy: 'the model check of the coordinator (model-check)',
    tiers: ['integration'],
    check: () => Promise.resolve(missingPrograms('spin', process.env.CC ?? 'gcc')),
    fix: ['apt-get install -y spin gcc'],
  },
  {
    name: 'faketime (with libfaketimeMT)',
    usedBy: 'the fault suite\'s clock faults (jepsen)',
    tiers: ['e2e'],
    check: () => Promise.resolve(allOf(missingPrograms('faketime'), libfaketime() ? null : 'libfaketimeMT.so.1 not found')),
    fix: ['apt-get install -y faketime'],
  },
  {
    name: 'ip and tc (iproute2)',
    usedBy: 'the fault suite\'s network partitions (jepsen)',
    tiers: ['e2e'],
    check: () => Promise.resolve(missingPrograms('ip', 'tc')),
    fix: ['apt-get install -y iproute2'],
  },
];

export interface MissingPrerequisite {
  prerequisite: Prerequisite;
  problem: string;
}

/** Every prerequisite of `tiers` that is not there, checked all at once. */
export async function missingPrerequisites(tiers: readonly Tier[]): Promise<MissingPrerequisite[]> {
  const needed = PREREQUISITES.filter((p) => p.tiers.some((tier) => tiers.includes(tier)));
  const problems = await Promise.all(needed.map((p) => p.check().catch((error: unknown) => `its check failed: ${reason(error)}`)));
  return needed.flatMap((prerequisite, i) => {
    const problem = problems[i];
    return problem === null ? [] : [{ prerequisite, problem }];
  });
}

/** The text of the one error that lists them, each with its fix. */
export function describeMissing(missing: readonly MissingPrerequisite[]): string {
  return missing
    .map(({ prerequisite, problem }) =>
      [`- ${prerequisite.name}: ${problem}`, `  needed by ${prerequisite.usedBy}; as root:`, ...prerequisite.fix.map((command) => `    ${command}`)].join('\n'),
    )
    .join('\n');
}
