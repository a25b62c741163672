/** The README's demos, run exactly as a newcomer runs them (after the build): they must end with every invariant OK. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/stack.js';

function runDemo(...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve(ROOT, 'dist/scripts/demo.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => done({ code, output }));
  });
}

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
});
