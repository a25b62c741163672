/**
 * `npm run bench:recovery -- --in-doubt 5000 --instances 2 [--recovery-concurrency N] [--write-concurrency N]`: recovery
 * speed. Leaves N two-branch TCC transactions decided (`committing`) with their lease run out, as
 * a crash of every instance would, starts coordinator instances, measures the latency of new
 * transactions while nothing is in doubt (idle), then makes the N due at once and measures how
 * fast the instances finish them, and the latency of new transactions meanwhile (whether
 * recovery starves them). The participant is a bare HTTP server that confirms at once, so the
 * figure is the coordinator's.
 */
import { createServer } from 'node:http';
import os from 'node:os';
import pg from 'pg';
import { TransactionClient } from '@nest-dtx/sdk';
import { createTestDatabase } from '../test/support/databases.js';
import { cpuTicks, postgresCpuTicks, ticksToMs } from './lib/bench/probes.js';
import { coordinator, freePort, postJson, sleep, type CoordinatorHandle } from './lib/stack.js';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

async function main(): Promise<void> {
  const inDoubt = option('in-doubt', 5_000);
  const instances = option('instances', 2);
  /** 0: the coordinator's default. */
  const recoveryConcurrency = option('recovery-concurrency', 0);
  const writeConcurrency = option('write-concurrency', 0);
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
       SELECT 'doubt-' || n, 'tcc', 'committing', true, 'bench', 60000, now() + interval '1 minute', now() + interval '1 hour', 2
       FROM generate_series(1, $1) AS n`,
      [inDoubt],
    );
    await client.query(
      `INSERT INTO branches (gid, branch_id, seq, participant, action, payload, status, attempts)
       SELECT 'doubt-' || n, 'b' || b, b, 'fast', 'work', '{}'::jsonb, 'prepared', 1
       FROM generate_series(1, $1) AS n, generate_series(1, 2) AS b`,
      [inDoubt],
    );
    console.log(`${inDoubt} transactions left committing; starting ${instances} instance(s)`);

    const startedAt = Date.now();
    for (let i = 0; i < instances; i++) {
      const env: Record<string, string> = { RECOVERY_INTERVAL_MS: '100', LOG_LEVEL: 'warn' };
      if (recoveryConcurrency) env.RECOVERY_CONCURRENCY = String(recoveryConcurrency);
      if (writeConcurrency) env.DB_WRITE_CONCURRENCY = String(writeConcurrency);
      const c = await coordinator(`recovery-${i}`, db.url, env);
      coordinators.push(c);
    }
    await Promise.all(coordinators.map((c) => c.start()));
    console.log(`instances up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);

    // New work, one transaction after another with a short pause, on the first instance.
    const fresh = new TransactionClient({ coordinatorUrl: coordinators[0].url });
    let freshCount = 0;
    const newWork = async (latencies: number[], until: () => boolean): Promise<void> => {
      while (!until()) {
        const t0 = performance.now();
        await fresh.begin({ mode: 'tcc', gid: `fresh-${freshCount++}`, wait: true, branches: [{ participant: 'fast', action: 'work' }] });
        latencies.push(performance.now() - t0);
        await sleep(20);
      }
    };
    const idle: number[] = [];
    const idleUntil = Date.now() + 3_000;
    await newWork(idle, () => Date.now() >= idleUntil);

    // Now every in-doubt transaction falls due at once.
    let remaining = inDoubt;
    const during: number[] = [];
    const coordinatorPids = coordinators.map((c) => c.process.child?.pid ?? 0);
    const coordinatorTicks = () => coordinatorPids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
    const cpuBefore = { coordinators: coordinatorTicks(), postgres: postgresCpuTicks(), bench: process.cpuUsage() };
    const dueAt = Date.now();
    await client.query(`UPDATE global_transactions SET next_attempt_at = now() - interval '1 second' WHERE gid LIKE 'doubt-%'`);
    const work = newWork(during, () => remaining === 0);
    for (;;) {
      const open = await client.query<{ n: string }>(`SELECT count(*) AS n FROM global_transactions WHERE gid LIKE 'doubt-%' AND status <> 'committed'`);
      remaining = Number(open.rows[0].n);
      if (remaining === 0) break;
      await sleep(20);
    }
    const seconds = (Date.now() - dueAt) / 1000;
    const benchCpu = process.cpuUsage(cpuBefore.bench);
    const cpuMs = {
      coordinators: ticksToMs(coordinatorTicks() - cpuBefore.coordinators),
      postgres: ticksToMs(postgresCpuTicks() - cpuBefore.postgres),
      bench: (benchCpu.user + benchCpu.system) / 1000,
    };
    await work;
    await client.end();
    const p = (values: number[], q: number) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1) ?? '-';
    };
    console.log(
      `recovered ${inDoubt} in-doubt transactions in ${seconds.toFixed(2)} s from the moment they fell due, with ${instances} instance(s)` +
        `${recoveryConcurrency ? `, RECOVERY_CONCURRENCY ${recoveryConcurrency}` : ''}: ${(inDoubt / seconds).toFixed(0)} tx/s`,
    );
    const perTx = (ms: number) => (ms / inDoubt).toFixed(3);
    const totalPerTx = (cpuMs.coordinators + cpuMs.postgres + cpuMs.bench) / inDoubt;
    console.log(
      `CPU per recovered transaction: coordinators ${perTx(cpuMs.coordinators)} ms, Postgres ${perTx(cpuMs.postgres)} ms, ` +
        `this process (participant, new transactions, polling) ${perTx(cpuMs.bench)} ms; ` +
        `${totalPerTx.toFixed(3)} ms in all, so ${os.availableParallelism()} cores bound recovery at about ${((os.availableParallelism() * 1000) / totalPerTx).toFixed(0)} tx/s`,
    );
    console.log(`new transactions while idle:    ${idle.length}, latency p50 ${p(idle, 0.5)} ms, p99 ${p(idle, 0.99)} ms`);
    console.log(`new transactions during recovery: ${during.length}, latency p50 ${p(during, 0.5)} ms, p99 ${p(during, 0.99)} ms`);
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
