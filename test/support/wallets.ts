import pg from 'pg';

/** A wallet row of the example apps (test/consumer-app, docs/getting-started.md). */
export interface WalletRow {
  balance: number;
  frozen: number;
}

/** Every wallet of the `wallets` table in the database at `url`, by id. */
export async function readWallets(url: string): Promise<Record<string, WalletRow>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<WalletRow & { id: string }>('SELECT id, balance, frozen FROM wallets ORDER BY id');
    return Object.fromEntries(rows.map((row) => [row.id, { balance: row.balance, frozen: row.frozen }]));
  } finally {
    await client.end();
  }
}
