/**
 * `npm run bench:recovery -- --in-doubt 5000 --instances 2 [--recovery-concurrency 16]`: recovery speed. Leaves N two-branch
 * TCC transactions decided (`committing`) with their lease run out, as a crash of every instance
 * would, then starts coordinator instances and measures how fast they finish them, while new
 * transactions keep arriving (their latency shows whether recovery starves them). The
 * participant is a bare HTTP server that confirms at once, so the figure is the coordinator's.
 */
import { createServer } from 'node:http';
import pg from 'pg';
import { TransactionClient } from '@app/sdk';
import { createTestDatabase } from '../test/support/databases.js';
import { coordinator, freePort, postJson, sleep, type CoordinatorHandle } from './lib/stack.js';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

async function main(): Promise<void> {
  const inDoubt = option('in-doubt', 5_000);
  const instances = option('instances', 2);
  const recoveryConcurrency = option('recovery-concurrency', 16);
  const db = await createTestDatabase('recovery_bench');
  const participantPort = await freePort();
  const participant = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => participant.listen(participantPort, '127.0.0.1', r));
  const coordinators: CoordinatorHandle[] = [];
  try {
    // A first instance creates the schema and registers the participant, then goes away.
    const setup = await coordinator('recovery-setup', db.url, { RECOVERY_INTERVAL_MS: '600000', LOG_LEVEL: 'warn' });
    await setup.start();
    await postJson(`${setup.url}/v1/participants`, {
      name: 'fast',
      transport: 'http',
      endpoint: `http://127.0.0.1:${participantPort}/tx`,
      actions: [{ name: 'work', modes: ['tcc'] }],
    });
    await setup.process.kill();

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(
      `INSERT INTO global_transactions (gid, mode, status, one_shot, request_hash, timeout_ms, deadline, next_attempt_at, version)
       SELECT 'doubt-' || n, 'tcc', 'committing', true, 'bench', 60000, now() + interval '1 minute', now() - interval '1 second', 2
       FROM generate_series(1, $1) AS n`,
      [inDoubt],
    );
    await client.query(
      `INSERT INTO branches (gid, branch_id, seq, participant, action, payload, status, attempts)
       SELECT 'doubt-' || n, 'b' || b, b, 'fast', 'work', '{}'::jsonb, 'prepared', 1
       FROM generate_series(1, $1) AS n, generate_series(1, 2) AS b`,
      [inDoubt],
    );
    console.log(`${inDoubt} transactions left committing, due for recovery; starting ${instances} instance(s)`);

    const started = Date.now();
    for (let i = 0; i < instances; i++) {
      const c = await coordinator(`recovery-${i}`, db.url, { RECOVERY_INTERVAL_MS: '100', RECOVERY_CONCURRENCY: String(recoveryConcurrency), LOG_LEVEL: 'warn' });
      coordinators.push(c);
    }
    await Promise.all(coordinators.map((c) => c.start()));

    // New work keeps arriving while recovery runs.
    const latencies: number[] = [];
    let remaining = inDoubt;
    const fresh = new TransactionClient({ coordinatorUrl: coordinators[0].url });
    const newWork = (async () => {
      for (let i = 0; remaining > 0; i++) {
        const t0 = Date.now();
        await fresh.begin({ mode: 'tcc', gid: `fresh-${i}`, wait: true, branches: [{ participant: 'fast', action: 'work' }] });
        latencies.push(Date.now() - t0);
        await sleep(50);
      }
    })();
    for (;;) {
      const open = await client.query<{ n: string }>(`SELECT count(*) AS n FROM global_transactions WHERE gid LIKE 'doubt-%' AND status <> 'committed'`);
      remaining = Number(open.rows[0].n);
      if (remaining === 0) break;
      await sleep(100);
    }
    const seconds = (Date.now() - started) / 1000;
    await newWork;
    await client.end();
    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    console.log(`recovered ${inDoubt} in-doubt transactions in ${seconds.toFixed(1)} s with ${instances} instance(s), RECOVERY_CONCURRENCY ${recoveryConcurrency}: ${(inDoubt / seconds).toFixed(0)} tx/s (start-up included)`);
    console.log(`meanwhile ${latencies.length} new transactions committed, latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`);
  } finally {
    await Promise.all(coordinators.map((c) => c.process.kill()));
    participant.close();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
