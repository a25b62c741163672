import { describe, expect, it } from 'vitest';
import { Batcher, type BatchedOp } from './batcher.js';

type Op = BatchedOp<string> & { name: string };

/** A batcher whose flushes are held until the test releases them, recording what each batch carried. */
function harness(options: { maxInFlight: number; maxBatch: number }) {
  const batches: string[][] = [];
  const release: (() => void)[] = [];
  const batcher = new Batcher<Op>(
    (batch) =>
      new Promise<void>((done) => {
        batches.push(batch.map((op) => op.name));
        release.push(() => {
          for (const op of batch) op.resolve(`done:${op.name}`);
          done();
        });
      }),
    options,
  );
  const submit = (key: string, name = key) =>
    new Promise<string>((resolve, reject) => batcher.submit({ key, name, resolve: resolve, reject }));
  const tick = () => new Promise<void>((r) => setImmediate(r));
  return { batcher, batches, release, submit, tick };
}

describe('Batcher (group commit)', () => {
  it('flushes at once when a slot is free, and gathers what arrives meanwhile into the next batch', async () => {
    const h = harness({ maxInFlight: 1, maxBatch: 100 });
    const first = h.submit('a');
    expect(h.batches).toEqual([['a']]);
    const rest = ['b', 'c', 'd'].map((k) => h.submit(k));
    expect(h.batches).toHaveLength(1);
    h.release[0]();
    expect(await first).toBe('done:a');
    await h.tick();
    expect(h.batches).toEqual([['a'], ['b', 'c', 'd']]);
    h.release[1]();
    expect(await Promise.all(rest)).toEqual(['done:b', 'done:c', 'done:d']);
  });

  it('never puts two operations of one key in a batch, nor runs them at once', async () => {
    const h = harness({ maxInFlight: 2, maxBatch: 100 });
    void h.submit('g1', 'g1#1');
    void h.submit('g1', 'g1#2');
    void h.submit('g2', 'g2#1');
    // g1#1 runs; g1#2 must wait for it even though a second slot is free; g2 takes that slot.
    expect(h.batches).toEqual([['g1#1'], ['g2#1']]);
    h.release[1]();
    await h.tick();
    expect(h.batches).toHaveLength(2);
    h.release[0]();
    await h.tick();
    expect(h.batches[2]).toEqual(['g1#2']);
  });

  it('caps a batch at maxBatch operations and keeps arrival order', async () => {
    const h = harness({ maxInFlight: 1, maxBatch: 2 });
    void h.submit('x');
    for (const k of ['a', 'b', 'c', 'd', 'e']) void h.submit(k);
    for (let i = 0; i < 3; i++) {
      h.release[i]();
      await h.tick();
    }
    expect(h.batches).toEqual([['x'], ['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('rejects every operation of a batch whose flush throws, and goes on with the next', async () => {
    let calls = 0;
    const batcher = new Batcher<Op>((batch) => {
      calls++;
      if (calls === 1) return Promise.reject(new Error('connection lost'));
      for (const op of batch) op.resolve('ok');
      return Promise.resolve();
    }, { maxInFlight: 1, maxBatch: 10 });
    const submit = (key: string) => new Promise<string>((resolve, reject) => batcher.submit({ key, name: key, resolve: resolve, reject }));
    const lost = submit('a');
    const next = submit('b');
    await expect(lost).rejects.toThrow('connection lost');
    expect(await next).toBe('ok');
    expect(batcher.pending).toEqual({ queued: 0, inFlight: 0 });
  });
});
