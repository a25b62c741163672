/**
 * A quick measurement, not a benchmark: how long adding one branch to an interactive tcc
 * transaction takes as the transaction grows, and the coordinator's memory after. One real
 * coordinator (its own database), one bare participant that answers 200 to everything.
 *
 *   npm run build --silent && node dist/scripts/add-branch-measure.js [branches=300] [payloadBytes=4096]
 *
 * DTX_COORDINATOR_ENTRY=<another build's main.js> measures that build with the same harness.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { coordinator, postJson } from './lib/stack.js';
import { PG_ADMIN_URL, databaseUrl } from '../test/support/databases.js';

const branches = Number(process.argv[2] ?? 300);
const payloadBytes = Number(process.argv[3] ?? 4096);

/** Resident memory of a process, in MB (Linux). */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '0';
  return Math.round(Number(/\d+/.exec(line)?.[0] ?? 0) / 1024);
}

async function main(): Promise<void> {
  const name = `measure_add_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((done) => bare.listen(0, '127.0.0.1', done));
  const coord = await coordinator('measure-add-branch', databaseUrl(name), { MAX_BRANCHES_PER_TRANSACTION: '1000', LOG_LEVEL: 'warn' });
  try {
    await coord.start();
    const endpoint = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/tx`;
    await postJson(`${coord.url}/v1/participants`, { name: 'bare', transport: 'http', endpoint, actions: [{ name: 'op', modes: ['tcc'] }] });
    await postJson(`${coord.url}/v1/transactions`, { mode: 'tcc', gid: 'measure', timeoutMs: 3_600_000 });
    const payload = { blob: 'x'.repeat(payloadBytes) };
    const ms: number[] = [];
    for (let i = 1; i <= branches; i++) {
      const startedAt = performance.now();
      const answer = await postJson(`${coord.url}/v1/transactions/measure/branches`, { branchId: `b${i}`, participant: 'bare', action: 'op', payload });
      ms.push(performance.now() - startedAt);
      if (answer.status !== 201) throw new Error(`add ${i}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    // Averages of ten adds around each point, so one slow add does not decide the figure.
    const around = (n: number) => (ms.slice(Math.max(0, n - 10), n).reduce((a, b) => a + b, 0) / Math.min(10, n)).toFixed(1);
    console.log(`branches=${branches} payload=${payloadBytes}B  ms/add at n=10: ${around(10)}  at n=${branches}: ${around(branches)}  coordinator RSS: ${rssMb(coord.process.child!.pid!)} MB`);
  } finally {
    await coord.process.kill();
    bare.close();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
