/** The README's demos, run exactly as a newcomer runs them (after the build): they must end with every invariant OK. */
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
});
