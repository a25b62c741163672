/** The demos (docs/demos.md), run exactly as a newcomer runs them (after the build): they must end with every invariant OK. */
import { describe, expect, it } from 'vitest';
import { runScript } from '../../scripts/lib/stack.js';

const runDemo = (...args: string[]) => runScript('demo', ...args);

describe('demos', () => {
  it('npm run demo: the bank transfers conserve money and exit 0', async () => {
    const { code, output } = await runDemo();
    expect(output).toContain('OK   total money unchanged');
    expect(output).not.toContain('FAIL');
    expect(output).toMatch(/demo-5 \| committed/);
    expect(code).toBe(0);
  });

  it('npm run demo -- purchase: stock, money and orders add up and it exits 0', async () => {
    const { code, output } = await runDemo('purchase');
    expect(output).toContain('OK   stock + reserved + sold constant');
    expect(output).toContain('OK   no order left pending');
    expect(output).not.toContain('FAIL');
    expect(code).toBe(0);
  });

  it('npm run demo -- polyglot: Postgres, MariaDB and Redis stay consistent through refusals and kill -9, and it exits 0', async () => {
    const { code, output } = await runDemo('polyglot');
    expect(output).toContain('OK   money unchanged across Postgres and MariaDB');
    expect(output).toContain('OK   points awarded exactly for the committed transfers');
    expect(output).toContain('OK   no prepared transaction left on either database');
    // The crash really happened with bank B's XA branch prepared in MariaDB.
    expect(output).toContain('MariaDB still holds 1 prepared XA transaction(s) of bank-b');
    expect(output).toMatch(/poly-6 \| committed/);
    expect(output).toMatch(/poly-5 \| rolled_back/);
    expect(output).not.toContain('FAIL');
    expect(code).toBe(0);
  }, 180_000);

  it('npm run demo -- outbox: every committed order delivered and counted exactly once through kill -9 of sender, coordinator and consumer, and it exits 0', async () => {
    const { code, output } = await runDemo('outbox');
    expect(output).toContain("OK   every committed order's message delivered once to inventory and counted once from RabbitMQ and once from NATS");
    expect(output).toContain('OK   nothing applied or counted for the orders that never committed');
    expect(output).toContain('OK   no message left active, committing or rolling back: 0');
    // The kills really happened where the scenarios say.
    expect(output).toContain('the order committed locally; the order service killed -9 as its submit reached the proxy');
    expect(output).toContain('the order service killed -9 before its local transaction ran');
    expect(output).toMatch(/outbox-3-1 .*\| committed +\| check-back: 2xx/);
    expect(output).toMatch(/outbox-4-1 .*\| rolled_back \(timeout\) +\| check-back: 409/);
    expect(output).toContain('coordinator exited (code SIGKILL)');
    expect(output).toContain('OK   the counter was killed mid-batch');
    expect(output).not.toContain('FAIL');
    expect(code).toBe(0);
  }, 240_000);

  it('npm run demo -- at: AT transfers with no compensation code stay exact through refusals, rollbacks, lock waits and kill -9, and it exits 0', async () => {
    const { code, output } = await runDemo('at');
    expect(output).toContain('OK   every transaction ended (committed or rolled back)');
    expect(output).toContain('OK   total money unchanged');
    expect(output).toContain("OK   every account's balance exactly as the committed transfers make it");
    expect(output).toContain("OK   the rollback restored dave's row exactly");
    expect(output).toContain('OK   bank B died with the credit committed locally (its undo and lock rows in its database)');
    expect(output).toContain('OK   a plain write to a held account was refused: 409 on bank A, 409 on bank B');
    expect(output).toContain('OK   the transfer on the held account failed cleanly: rolled_back, bank A refused its debit (at_lock_conflict)');
    expect(output).toContain('OK   no AT undo or lock rows left after the clean-up: bank A 0 undo / 0 lock, bank B 0 undo / 0 lock');
    // The kills really happened where the scenarios say.
    expect(output).toContain('bank B killed after its local commit: ');
    expect(output).toContain('coordinator exited (code SIGKILL)');
    expect(output).toMatch(/at-6 \| committed/);
    expect(output).not.toContain('FAIL');
    expect(code).toBe(0);
  }, 180_000);
  it('npm run demo -- workflow: an order workflow through a refusal, long-running steps, kill -9 of its host and of the coordinator, a deadline and an order under the approval limit ends as each scenario says, and it exits 0', async () => {
    const { code, output } = await runDemo('workflow');
    // The outcome of each scenario, as its row of the table says.
    expect(output).toMatch(/wf-1 \| all approved +\| committed /);
    expect(output).toMatch(/wf-2 \| approval refused +\| rolled_back \(client\) /);
    expect(output).toMatch(/wf-3 \| host killed -9 between payment and approval +\| committed /);
    expect(output).toMatch(/wf-4 \| coordinator killed -9 while the approval waits +\| committed /);
    expect(output).toMatch(/wf-5 \| deadline \(8 s\) passes while the payment is ongoing +\| rolled_back \(timeout\) /);
    expect(output).toMatch(/wf-6 \| small order \(at most 40\.00\): no approval asked +\| committed +\| 1\/1\/0\/1 /);
    // The kills really happened where the scenarios say, and the person's decisions reached the coordinator.
    expect(output).toContain('host killed -9 (exit SIGKILL) after the payment, before the approval');
    expect(output).toContain('coordinator killed -9 (exit SIGKILL) while the approval waits for a person');
    expect(output).toContain('a person refuses o-2 (reported to the coordinator: recorded)');
    for (const invariant of [
      'OK   stock conserved (available + reserved + sold)',
      'OK   money conserved',
      'OK   every workflow terminal, as expected',
      'OK   no phase-1 call made twice for one step',
      'OK   the host killed -9 replayed without calling anyone again',
      'OK   wf-5 compensated newest first: payments > inventory',
      "OK   the deadline's ongoing payment got its rollback",
      'OK   every committed order shipped and captured, every rolled-back one recalled and voided',
    ]) {
      expect(output).toContain(invariant);
    }
    // The approval and the shipment run at once, so either may be recorded first; the demo's own
    // check compares the undo order with the recorded order, and both are newest first.
    expect(output).toMatch(/OK {3}wf-2 compensated newest first: (shipping > approvals|approvals > shipping) > payments > inventory/);
    expect(output).not.toContain('FAIL');
    expect(code).toBe(0);
  }, 180_000);
});
