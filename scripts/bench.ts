/**
 * `npm run bench`: figures, not assertions. Starts the coordinator and two account services as
 * real processes on the machine's Postgres (TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432),
 * runs one-shot two-branch TCC transfers, and prints throughput, latency and the number of
 * Postgres commits the coordinator makes per global transaction (xact_commit of
 * pg_stat_database for its database, read before and after the batch).
 *
 * Options: --transactions N (default 1000), --concurrency C (default 16).
 */
import pg from 'pg';
import { TransactionClient } from '@app/sdk';
import { createTestDatabase } from '../test/support/databases.js';
import { accountService, coordinator, openAccount, sleep } from './lib/stack.js';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

async function xactCommits(url: string, database: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = await client.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1', [database]);
    return Number(rows.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main(): Promise<void> {
  const total = option('transactions', 1_000);
  const concurrency = option('concurrency', 16);
  const dbs = await Promise.all(['bench_coord', 'bench_bank_a', 'bench_bank_b'].map((p) => createTestDatabase(p)));
  // Recovery polls are commits too: make them rare so the figure is the transactions' own.
  const coord = await coordinator('bench-coordinator', dbs[0].url, { RECOVERY_INTERVAL_MS: '600000', LOG_LEVEL: 'warn' });
  await coord.start();
  const bankA = await accountService('bank-a', dbs[1].url, coord.url);
  const bankB = await accountService('bank-b', dbs[2].url, coord.url);
  try {
    await Promise.all([bankA.start(), bankB.start()]);
    await openAccount(bankA, 'payer', 1_000_000_000);
    await openAccount(bankB, 'payee', 0);
    const client = new TransactionClient({ coordinatorUrl: coord.url });
    const one = (gid: string) =>
      client.begin({
        mode: 'tcc',
        gid,
        wait: true,
        branches: [
          { participant: 'bank-a', action: 'debit', payload: { accountId: 'payer', amount: 1 } },
          { participant: 'bank-b', action: 'credit', payload: { accountId: 'payee', amount: 1 } },
        ],
      });
    for (let i = 0; i < 50; i++) await one(`warmup-${i}`);

    // Postgres flushes a backend's statistics when it goes idle (at most ~10 s later).
    await sleep(11_000);
    const before = await xactCommits(dbs[0].url, dbs[0].name);
    const latencies: number[] = [];
    let next = 0;
    let failed = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const gid = `bench-${next++}`;
          const t0 = process.hrtime.bigint();
          const view = await one(gid);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (view.status !== 'committed') failed++;
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await sleep(11_000);
    const after = await xactCommits(dbs[0].url, dbs[0].name);
    latencies.sort((a, b) => a - b);

    console.log(`one-shot two-branch TCC transfers, wait: true, ${total} transactions, concurrency ${concurrency}`);
    console.log(`  throughput          ${(total / seconds).toFixed(0)} tx/s (${seconds.toFixed(1)} s)`);
    console.log(`  latency p50/p95/p99 ${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 95).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)} ms`);
    console.log(`  not committed       ${failed}`);
    console.log(`  coordinator Postgres commits: ${after - before} for ${total} transactions = ${((after - before) / total).toFixed(2)} per transaction`);
  } finally {
    await Promise.all([bankA.process.kill(), bankB.process.kill(), coord.process.kill()]);
    await Promise.all(dbs.map((d) => d.drop()));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
