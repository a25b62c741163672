/**
 * `npm run chaos -- --transfers N --seed S`: the fault-injection runner. Starts several
 * coordinator instances (one Postgres, a private Redis) and two banks behind fault-injecting
 * proxies, runs N transfers across tcc, 2pc and saga while injecting faults at random
 * (reproducible from the seed), then waits for every transaction to end and checks the
 * invariants. Prints a report; exits non-zero on any violation.
 *
 * Options: --transfers N (300), --seed S (time), --instances K (2), --concurrency C (8).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import pg from 'pg';
import type { Mode } from '@app/protocol';
import { TransactionClient } from '@app/sdk';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import {
  ManagedProcess,
  accountsOf,
  coordinator,
  freePort,
  openAccount,
  participantService,
  sleep,
  until,
  type CoordinatorHandle,
  type ServiceHandle,
} from './lib/stack.js';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

/** mulberry32: small, fast, and the same sequence for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROXY_FAULTS = ['drop_call', 'drop_answer', 'duplicate_call', 'delay_past_timeout', 'answer_503'] as const;
const PROCESS_FAULTS = ['kill_coordinator', 'crash_point', 'kill_participant', 'pause_coordinator', 'cut_postgres', 'stop_redis'] as const;
type FaultKind = (typeof PROXY_FAULTS)[number] | (typeof PROCESS_FAULTS)[number];
const CRASH_POINTS = ['after_begin', 'after_branch_recorded', 'after_phase1_calls', 'after_decision', 'after_phase2_calls'];

const CALL_TIMEOUT_MS = 1_000;
const LEASE_MS = 3_000;

interface Leg {
  bank: 'bank-a' | 'bank-b';
  action: 'debit' | 'credit';
  account: string;
  amount: number;
}

interface Report {
  seed: number;
  transfers: number;
  committed: number;
  rolledBack: number;
  notStarted: number;
  faults: Record<string, number>;
  violations: { gid: string; problem: string; history?: unknown }[];
  secondsFromLastFaultToAllEnded: number;
  phase2Calls: number;
}

/** A call as a proxy saw it: which instance sent which phase of which branch, and when. */
interface SeenCall {
  gid: string;
  branchId: string;
  phase: string;
  instance: string;
  at: number;
}
const PHASE2 = new Set(['confirm', 'cancel', 'commit', 'rollback', 'compensate']);

/** An HTTP proxy in front of a bank that records every call, and loses, duplicates, delays and fails some. */
function faultProxy(
  target: () => number,
  random: () => number,
  rate: number,
  count: (kind: FaultKind) => void,
  active: () => boolean,
  seen: SeenCall[],
): Server {
  let forced = 0;
  const forward = (req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const upstream = httpRequest(
        { host: '127.0.0.1', port: target(), path: req.url, method: req.method, headers: { ...req.headers, host: `127.0.0.1:${target()}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: { 'content-type': res.headers['content-type'] ?? 'application/json' }, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const call = (() => {
          try {
            return JSON.parse(body.toString('utf8')) as { gid: string; branchId: string; phase: string };
          } catch {
            return null;
          }
        })();
        if (call) seen.push({ gid: call.gid, branchId: call.branchId, phase: call.phase, instance: String(req.headers['x-tx-coordinator'] ?? '?'), at: Date.now() });
        // The first faults go round every kind, so that a short run still sees each one.
        const fault = active() && random() < rate ? PROXY_FAULTS[forced < PROXY_FAULTS.length ? forced++ : Math.floor(random() * PROXY_FAULTS.length)] : null;
        if (fault) count(fault);
        try {
          if (fault === 'drop_call') return res.destroy();
          if (fault === 'answer_503') return res.writeHead(503).end('{"injected":true}');
          if (fault === 'delay_past_timeout') await sleep(CALL_TIMEOUT_MS + 300);
          if (fault === 'duplicate_call') await forward(req, body).catch(() => undefined);
          const answer = await forward(req, body);
          if (fault === 'drop_answer') return res.destroy();
          if (!res.destroyed) res.writeHead(answer.status, answer.headers).end(answer.body);
        } catch {
          if (!res.destroyed) res.writeHead(502).end('{"error":"bank unreachable"}');
        }
      })();
    });
  });
}

async function main(): Promise<number> {
  const transfers = option('transfers', 300);
  const seed = option('seed', Date.now() % 1_000_000_007);
  const instances = option('instances', 2);
  const concurrency = option('concurrency', 8);
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const report: Report = { seed, transfers, committed: 0, rolledBack: 0, notStarted: 0, faults: {}, violations: [], secondsFromLastFaultToAllEnded: 0, phase2Calls: 0 };
  const count = (kind: FaultKind) => (report.faults[kind] = (report.faults[kind] ?? 0) + 1);
  console.log(`chaos: ${transfers} transfers, seed ${seed}, ${instances} coordinator instances (rerun: npm run chaos -- --transfers ${transfers} --seed ${seed})`);

  const dbs: TestDatabase[] = await Promise.all(['chaos_coord', 'chaos_bank_a', 'chaos_bank_b'].map((p) => createTestDatabase(p)));
  const redisPort = await freePort();
  const redis = new ManagedProcess('chaos-redis', '', {}, {
    program: 'redis-server',
    args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  });
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const coordinators: CoordinatorHandle[] = [];
  const banks: Record<'bank-a' | 'bank-b', ServiceHandle> = {} as never;
  const proxies: Server[] = [];
  const seen: SeenCall[] = [];
  let faulting = true;
  try {
    redis.start();
    await sleep(300);
    const env = {
      REDIS_URL: redisUrl,
      LEASE_MS: String(LEASE_MS),
      CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
      RECOVERY_INTERVAL_MS: '200',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '1000',
      WAIT_MAX_MS: '5000',
      LOG_LEVEL: 'warn',
      DB_POOL_SIZE: '10',
    };
    for (let i = 0; i < instances; i++) coordinators.push(await coordinator(`chaos-coordinator-${i}`, dbs[0].url, { ...env, INSTANCE_ID: `chaos-${i}` }));
    for (const c of coordinators) await c.start();

    for (const [i, name] of (['bank-a', 'bank-b'] as const).entries()) {
      const bankPort = await freePort();
      const proxyPort = await freePort();
      const proxy = faultProxy(() => bankPort, random, 0.08, count, () => faulting, seen);
      await new Promise<void>((r) => proxy.listen(proxyPort, '127.0.0.1', r));
      proxies.push(proxy);
      banks[name] = await participantService('account', name, dbs[i + 1].url, coordinators[0].url, 'http', `http://127.0.0.1:${proxyPort}`, bankPort);
      await banks[name].start();
    }
    const accounts = Array.from({ length: 10 }, (_, i) => `acc-${i}`);
    for (const bank of Object.values(banks)) for (const id of accounts) await openAccount(bank, id, 100_000);
    const initial = (await accountsOf(banks['bank-a'])).totalBalance + (await accountsOf(banks['bank-b'])).totalBalance;

    // Faults at random instants while the transfers run.
    let lastFaultAt = Date.now();
    let forcedProcessFault = 0;
    const alive = () => coordinators.filter((c) => c.process.alive);
    // Goes on after the transfers until every kind of fault has happened at least once.
    const injectFaults = async (done: () => boolean) => {
      while (!done() || forcedProcessFault < PROCESS_FAULTS.length) {
        await sleep(300 + random() * 700);
        const kind = forcedProcessFault < PROCESS_FAULTS.length ? PROCESS_FAULTS[forcedProcessFault++] : pick(PROCESS_FAULTS);
        count(kind);
        lastFaultAt = Date.now();
        const target = pick(coordinators);
        await inject(kind, target).catch(async (error: unknown) => {
          console.log(`  (fault ${kind} did not go as planned: ${error instanceof Error ? error.message : String(error)}; restarting what is down)`);
          if (!target.process.alive) await target.start().catch(() => undefined);
        });
      }
    };
    const inject = async (kind: (typeof PROCESS_FAULTS)[number], target: CoordinatorHandle): Promise<void> => {
      switch (kind) {
          case 'kill_coordinator':
            await target.process.kill('SIGKILL');
            await sleep(200 + random() * 500);
            await target.start();
            break;
          case 'crash_point':
            // Armed, the instance may die at that step at any moment, even while it starts.
            await target.process.kill('SIGKILL');
            target.process.start({ DTX_TEST_CRASH_AT: pick(CRASH_POINTS) });
            await Promise.race([target.process.waitExit(), sleep(3_000)]);
            await target.process.kill('SIGKILL');
            await target.start();
            break;
          case 'kill_participant': {
            const bank = banks[pick(['bank-a', 'bank-b'] as const)];
            await bank.process.kill('SIGKILL');
            await sleep(300 + random() * 700);
            await bank.start();
            break;
          }
          case 'pause_coordinator':
            target.process.signal('SIGSTOP');
            await sleep(LEASE_MS + 500);
            target.process.signal('SIGCONT');
            break;
          case 'cut_postgres': {
            const admin = new pg.Client({ connectionString: dbs[0].url });
            await admin.connect();
            await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'dtx-coordinator%'`, [dbs[0].name]);
            await admin.end();
            break;
          }
          case 'stop_redis':
            await redis.kill('SIGKILL');
            await sleep(1_000);
            redis.start();
            break;
      }
    };

    const legsByGid = new Map<string, Leg[]>();
    let next = 0;
    const runTransfers = async () => {
      while (next < transfers) {
        const i = next++;
        const gid = `chaos-${seed}-${i}`;
        const mode = pick<Mode>(['tcc', '2pc', 'saga']);
        const [from, to] = random() < 0.5 ? (['bank-a', 'bank-b'] as const) : (['bank-b', 'bank-a'] as const);
        // Now and then more than an account holds, so that some transfers are refused.
        const amount = random() < 0.1 ? 200_000 : 1 + Math.floor(random() * 5_000);
        const legs: Leg[] = [
          { bank: from, action: 'debit', account: pick(accounts), amount },
          { bank: to, action: 'credit', account: pick(accounts), amount },
        ];
        legsByGid.set(gid, legs);
        const calls = legs.map((l) => ({ participant: l.bank, action: l.action, payload: { accountId: l.account, amount: l.amount } }));
        const instance = alive().length > 0 ? pick(alive()) : coordinators[0];
        const client = new TransactionClient({ coordinatorUrl: instance.url, timeoutMs: 8_000 });
        const interactive = mode !== 'saga' && random() < 0.3;
        const request = interactive
          ? (async () => {
              // Interactive: the client adds the branches and decides; a refused branch means rollback.
              await client.begin({ mode, gid, timeoutMs: 8_000 });
              try {
                for (const [n, c] of calls.entries()) await client.addBranch(gid, { ...c, branchId: `b${n + 1}` });
              } catch {
                await client.rollback(gid);
                return;
              }
              await client.commit(gid);
            })()
          : mode === 'saga'
            ? client.begin({ mode, gid, timeoutMs: 8_000, steps: calls.map((c, n) => ({ name: `s${n + 1}`, ...c })) })
            : client.begin({ mode, gid, timeoutMs: 8_000, branches: calls });
        await request.catch(() => undefined);
      }
    };

    let transfersDone = false;
    const faults = injectFaults(() => transfersDone);
    await Promise.all(Array.from({ length: concurrency }, runTransfers));
    transfersDone = true;
    await faults;
    faulting = false;
    for (const c of coordinators) if (!c.process.alive) await c.start();
    for (const bank of Object.values(banks)) if (!bank.process.alive) await bank.start();
    if (!redis.alive) redis.start();

    // Quiescence: every transaction the coordinators know of ends.
    const db = new pg.Client({ connectionString: dbs[0].url });
    await db.connect();
    try {
      await until('every transaction to end', async () => {
        const open = await db.query<{ n: string }>(`SELECT count(*) AS n FROM global_transactions WHERE status NOT IN ('committed', 'rolled_back')`);
        return Number(open.rows[0].n) === 0 ? true : undefined;
      }, 180_000, 500).catch(() => undefined);
      report.secondsFromLastFaultToAllEnded = (Date.now() - lastFaultAt) / 1000;

      const rows = (await db.query<{ gid: string; status: string; mode: string }>(`SELECT gid, status, mode FROM global_transactions`)).rows;
      const status = new Map(rows.map((r) => [r.gid, r.status]));
      for (const r of rows) {
        if (r.status === 'committed') report.committed++;
        else if (r.status === 'rolled_back') report.rolledBack++;
        else report.violations.push({ gid: r.gid, problem: `left ${r.status}` });
      }
      report.notStarted = transfers - rows.length;

      // History: the status only ever moved as PROTOCOL.md 2 allows, ending where the row is.
      const allowed: Record<string, string[]> = { active: ['committing', 'rolling_back', 'committed'], committing: ['committed'], rolling_back: ['rolled_back'] };
      const events = await db.query<{ gid: string; from_status: string | null; to_status: string; mode: string }>(
        `SELECT e.gid, e.from_status, e.to_status, t.mode FROM transaction_events e JOIN global_transactions t USING (gid)
         WHERE e.type IN ('created', 'status') ORDER BY e.id`,
      );
      const last = new Map<string, string>();
      for (const e of events.rows) {
        const previous = last.get(e.gid);
        const ok = previous === undefined ? e.to_status === 'active' : e.from_status === previous && (allowed[previous] ?? []).includes(e.to_status) && !(e.mode !== 'saga' && previous === 'active' && e.to_status === 'committed');
        if (!ok) report.violations.push({ gid: e.gid, problem: `status move ${previous ?? '(none)'} -> ${e.to_status}`, history: events.rows.filter((x) => x.gid === e.gid) });
        last.set(e.gid, e.to_status);
      }
      for (const [gid, final] of last) if (status.get(gid) !== final) report.violations.push({ gid, problem: `history ends ${final}, row says ${status.get(gid)}` });

      // Atomicity, exactly once: each account holds its opening balance moved by the committed transfers only.
      const expected = new Map<string, number>();
      for (const [gid, legs] of legsByGid) {
        if (status.get(gid) !== 'committed') continue;
        for (const leg of legs) {
          const key = `${leg.bank}/${leg.account}`;
          expected.set(key, (expected.get(key) ?? 100_000) + (leg.action === 'debit' ? -leg.amount : leg.amount));
        }
      }
      let total = 0;
      for (const [name, bank] of Object.entries(banks)) {
        const summary = await until(`${name} to answer`, () => accountsOf(bank), 60_000, 1_000);
        total += summary.totalBalance;
        if (summary.totalFrozen !== 0) report.violations.push({ gid: '-', problem: `${name}: ${summary.totalFrozen} left frozen` });
        if (summary.pendingCredits !== 0) report.violations.push({ gid: '-', problem: `${name}: ${summary.pendingCredits} left as pending credit` });
        for (const account of summary.accounts) {
          const want = expected.get(`${name}/${account.id}`) ?? 100_000;
          if (account.balance !== want) report.violations.push({ gid: '-', problem: `${name}/${account.id}: balance ${account.balance}, expected ${want}` });
        }
      }
      // Fencing: phase-2 calls for one transaction never come from two holders at once. The calls
      // sent under one lease (instance/version) span [first, last]; two leases' spans may not overlap.
      const spans = new Map<string, Map<string, { first: number; last: number }>>();
      for (const call of seen.filter((c) => PHASE2.has(c.phase))) {
        const byInstance = spans.get(call.gid) ?? new Map<string, { first: number; last: number }>();
        const span = byInstance.get(call.instance) ?? { first: call.at, last: call.at };
        span.first = Math.min(span.first, call.at);
        span.last = Math.max(span.last, call.at);
        byInstance.set(call.instance, span);
        spans.set(call.gid, byInstance);
      }
      for (const [gid, byInstance] of spans) {
        const list = [...byInstance.entries()].sort((x, y) => x[1].first - y[1].first);
        for (let k = 1; k < list.length; k++) {
          if (list[k][1].first < list[k - 1][1].last) {
            report.violations.push({ gid, problem: `phase-2 calls under leases ${list[k - 1][0]} and ${list[k][0]} overlap`, history: seen.filter((c) => c.gid === gid) });
          }
        }
      }
      report.phase2Calls = seen.filter((c) => PHASE2.has(c.phase)).length;

      if (total !== initial) report.violations.push({ gid: '-', problem: `money not conserved: ${initial} before, ${total} after` });
      for (const bankDb of dbs.slice(1)) {
        const client = new pg.Client({ connectionString: bankDb.url });
        await client.connect();
        const prepared = await client.query(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`);
        for (const row of prepared.rows as { gid: string }[]) report.violations.push({ gid: row.gid, problem: `prepared transaction left in ${bankDb.name}` });
        await client.end();
      }
    } finally {
      await db.end();
    }
  } finally {
    faulting = false;
    for (const proxy of proxies) proxy.close();
    await Promise.all([...Object.values(banks).map((b) => b.process.kill()), ...coordinators.map((c) => c.process.kill('SIGKILL'))]);
    await redis.kill('SIGKILL');
    for (const bankDb of dbs.slice(1)) {
      const client = new pg.Client({ connectionString: bankDb.url });
      await client.connect();
      for (const row of (await client.query(`SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`)).rows as { gid: string }[]) {
        await client.query(`ROLLBACK PREPARED '${row.gid}'`);
      }
      await client.end();
    }
    await Promise.all(dbs.map((d) => d.drop()));
  }

  console.log(`transfers: ${report.transfers} (committed ${report.committed}, rolled back ${report.rolledBack}, never begun ${report.notStarted})`);
  console.log(`faults injected: ${Object.entries(report.faults).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`from the last fault to every transaction ended: ${report.secondsFromLastFaultToAllEnded.toFixed(1)} s`);
  console.log(`phase-2 calls checked for overlapping senders: ${report.phase2Calls}`);
  console.log(`violations: ${report.violations.length}`);
  for (const v of report.violations.slice(0, 20)) console.log(`  ${v.gid}: ${v.problem}${v.history ? ` ${JSON.stringify(v.history)}` : ''}`);
  console.log(`CHAOS_REPORT ${JSON.stringify({ ...report, violations: report.violations.length })}`);
  return report.violations.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`chaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
