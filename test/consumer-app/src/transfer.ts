import { TransactionClient } from '@nest-dtx/sdk';

/** A transaction manager: moves money between two wallets with TCC, then back with a saga. */
async function transfer() {
  const client = new TransactionClient({ coordinatorUrl: process.env.COORDINATOR_URL ?? 'http://127.0.0.1:7070' });
  const participants = await client.listParticipants();
  const amount = Number(process.env.AMOUNT ?? 10);
  const tcc = await client.begin({
    mode: 'tcc',
    wait: true,
    branches: [
      { participant: 'wallet', action: 'debit', payload: { wallet: 'alice', amount } },
      { participant: 'wallet', action: 'credit', payload: { wallet: 'bob', amount } },
    ],
  });
  const saga = await client.begin({
    mode: 'saga',
    wait: true,
    steps: [
      { name: 'withdraw', participant: 'wallet', action: 'withdraw', payload: { wallet: 'bob', amount: 1 } },
      { name: 'deposit', participant: 'wallet', action: 'deposit', payload: { wallet: 'carol', amount: 1 } },
    ],
  });
  process.stdout.write(`${JSON.stringify({ participants: participants.map((p) => p.name), tcc: tcc.status, saga: saga.status })}\n`);
}

transfer().catch((error) => {
  process.stderr.write(`transfer failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
