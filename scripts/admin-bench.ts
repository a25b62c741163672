/**
 * `npm run bench:admin -- --rows 1000000`: the admin API over a large transaction log. Fills a
 * fresh database with N finished and in-flight transactions (two branches each, 20
 * participants, spread over 30 days), then times, through a real coordinator, each filter of
 * GET /admin/transactions on its first page and 50 pages deep (keyset cursor), a
 * transaction's detail, and GET /admin/stats. Prints the median of 5 runs of each.
 */
import pg from 'pg';
import { createTestDatabase } from '../test/support/databases.js';
import { coordinator, getJson, type CoordinatorHandle } from './lib/stack.js';

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

interface Page {
  items: { gid: string }[];
  nextCursor: string | null;
}

async function median(run: () => Promise<unknown>, times = 5): Promise<number> {
  const took: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await run();
    took.push(performance.now() - started);
  }
  return took.sort((a, b) => a - b)[Math.floor(times / 2)];
}

async function main(): Promise<void> {
  const rows = option('rows', 1_000_000);
  const db = await createTestDatabase('admin_bench');
  let coord: CoordinatorHandle | null = null;
  try {
    coord = await coordinator('admin-bench', db.url, { LOG_LEVEL: 'warn', RETENTION_DAYS: '0', RECOVERY_INTERVAL_MS: '600000' });
    await coord.start(); // creates the schema
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const filled = Date.now();
    // Mostly finished, a few in flight, 1 in 1,000 needing attention; never due (no recovery work).
    await client.query(
      `INSERT INTO global_transactions (gid, mode, status, reason, one_shot, request_hash, timeout_ms, deadline, needs_attention, created_at, updated_at)
       SELECT 'bench-' || n,
              (ARRAY['tcc', '2pc', 'saga'])[1 + n % 3],
              CASE WHEN n % 100 = 0 THEN 'committing' WHEN n % 10 = 0 THEN 'rolled_back' WHEN n % 997 = 0 THEN 'active' ELSE 'committed' END,
              CASE WHEN n % 10 = 0 AND n % 100 <> 0 THEN 'branch_failed' END,
              true, 'bench', 60000, now(), n % 1000 = 0,
              now() - (n::float / $1) * interval '30 days', now()
       FROM generate_series(1, $1) AS n`,
      [rows],
    );
    await client.query(
      `INSERT INTO branches (gid, branch_id, seq, participant, action, status, attempts)
       SELECT 'bench-' || n, 'b' || b, b, 'bank-' || ((n + b) % 20), 'debit', 'committed', 1
       FROM generate_series(1, $1) AS n, generate_series(1, 2) AS b`,
      [rows],
    );
    await client.query(
      `INSERT INTO transaction_events (gid, type, to_status) SELECT 'bench-' || n, 'created', 'active' FROM generate_series(1, $1, 1000) AS n`,
      [rows],
    );
    await client.query('ANALYZE');
    await client.end();
    console.log(`${rows.toLocaleString('en')} transactions, ${(2 * rows).toLocaleString('en')} branches written in ${((Date.now() - filled) / 1000).toFixed(0)} s; times are medians of 5 requests`);

    const base = `${coord.url}/admin/transactions`;
    const filters: Record<string, string> = {
      'no filter': '',
      'status=rolled_back': 'status=rolled_back',
      'status=committing': 'status=committing',
      'mode=saga': 'mode=saga',
      'attention=true': 'attention=true',
      'participant=bank-7': 'participant=bank-7',
      'status=committed&mode=2pc': 'status=committed&mode=2pc',
      'from..to (one day)': `from=${new Date(Date.now() - 11 * 86_400_000).toISOString()}&to=${new Date(Date.now() - 10 * 86_400_000).toISOString()}`,
    };
    console.log(`${'GET /admin/transactions?'.padEnd(44)} | first page (50) | 50 pages deep`);
    for (const [name, query] of Object.entries(filters)) {
      const url = `${base}?limit=50${query ? `&${query}` : ''}`;
      const first = await median(() => getJson<Page>(url));
      // Walk 50 pages down with the cursor, then time the 51st.
      let cursor: string | null = null;
      for (let i = 0; i < 50; i++) {
        const page: Page = await getJson<Page>(cursor ? `${url}&cursor=${encodeURIComponent(cursor)}` : url);
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      const deep = cursor ? await median(() => getJson<Page>(`${url}&cursor=${encodeURIComponent(cursor ?? '')}`)) : NaN;
      console.log(`  ${name.padEnd(42)} | ${first.toFixed(1).padStart(12)} ms | ${Number.isNaN(deep) ? '(fewer pages)' : `${deep.toFixed(1).padStart(10)} ms`}`);
    }
    const detail = await median(() => getJson(`${coord?.url}/admin/transactions/bench-${Math.floor(rows / 2)}`));
    console.log(`  GET /admin/transactions/{gid}              | ${detail.toFixed(1).padStart(12)} ms`);
    const stats = await median(() => getJson(`${coord?.url}/admin/stats`));
    console.log(`  GET /admin/stats                           | ${stats.toFixed(1).padStart(12)} ms`);
  } finally {
    await coord?.process.kill();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
