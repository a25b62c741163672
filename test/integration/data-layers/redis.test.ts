/**
 * The barrier conformance suite on Redis, then what only Redis has: queued commands and Lua
 * snippets run as one script with the barrier, on the real Redis. The Redis is shared with
 * other tests: every key of this file is under a prefix of its own run, deleted at the end
 * (never FLUSHDB).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis, type RedisOptions } from 'ioredis';
import type { Json } from '@nest-dtx/protocol';
import { BusinessFailure, ongoing, type DtxDataLayer } from '@nest-dtx/sdk';
import { redisDataLayer, type RedisBranchTx } from '@nest-dtx/sdk/redis';
import { call, describeBarrierConformance } from './conformance.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUN = `dtxtest:redis:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;
const BARRIER_PREFIX = `${RUN}barrier:`;
const key = (name: string) => `${RUN}${name}`;
const effectsKey = (gid: string) => key(`effects:${gid}`);
const branchKey = (gid: string, branchId = 'b1', prefix = BARRIER_PREFIX) => `${prefix}{${gid}}:${branchId}`;

/** The part of a key Redis Cluster hashes (its hash tag), by the cluster specification's rule. */
function hashTag(name: string): string {
  const open = name.indexOf('{');
  const close = open < 0 ? -1 : name.indexOf('}', open + 1);
  return close > open + 1 ? name.slice(open + 1, close) : name;
}

const clients: Redis[] = [];
function client(options: RedisOptions = {}): Redis {
  const made = new Redis(REDIS_URL, options);
  clients.push(made);
  return made;
}

/** Deletes this run's keys only. */
async function cleanUp(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${RUN}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

afterAll(async () => {
  await cleanUp();
  for (const c of clients.splice(0)) c.disconnect();
});

const record = (tx: RedisBranchTx, gid: string, phase: string) => tx.command('RPUSH', effectsKey(gid), phase);
/** Business work that only queues, as the (async) BusinessWork the layer takes. */
const queued =
  <R extends Json | void>(fn: (tx: RedisBranchTx) => R) =>
  (tx: RedisBranchTx): Promise<R> =>
    new Promise((resolve) => resolve(fn(tx)));

describeBarrierConformance('Redis', { rowLocks: false, retentionJob: false }, async () => {
  const redis = client();
  await redis.ping();
  return {
    layer: redisDataLayer(redis, { keyPrefix: BARRIER_PREFIX }),
    record: (tx, gid, phase) => Promise.resolve(record(tx, gid, phase)),
    // Refuses before it writes anything, as a refusing snippet must.
    refuse: queued((tx) => tx.script(`return dtx_refuse('out_of_stock', 'no stock')`)),
    crash: (tx, gid) =>
      queued(() => {
        record(tx, gid, 'try');
        throw new Error('disk on fire');
      })(tx),
    effects: (gid) => redis.lrange(effectsKey(gid), 0, -1),
    barrierRows: (gid) => redis.hlen(branchKey(gid)),
    // The file's afterAll deletes the keys and closes the clients.
    tearDown: () => Promise.resolve(),
  };
});

describe('Redis data layer', () => {
  let redis: Redis;
  let layer: DtxDataLayer<RedisBranchTx>;
  let n = 0;
  const gid = (name: string) => `${RUN.replaceAll(':', '.')}${name}-${++n}`;
  const recording = (g: string, phase: string, result: Json = { recorded: phase }) =>
    queued((tx) => {
      record(tx, g, phase);
      return result;
    });
  const effects = (g: string) => redis.lrange(effectsKey(g), 0, -1);
  const fields = (g: string, prefix?: string) => redis.hgetall(branchKey(g, 'b1', prefix));

  beforeAll(() => {
    redis = client();
    layer = redisDataLayer(redis, { keyPrefix: BARRIER_PREFIX });
  });

  it('keeps a branch in one hash, hash-tagged by its gid: a field per barrier row, phase 1 result after its origin', async () => {
    const tried = gid('layout');
    await layer.runPhase(call(tried, 'try'), recording(tried, 'try', { reserved: 10 }));
    expect(await fields(tried)).toEqual({ phase1: 'phase1:{"reserved":10}' });
    await layer.runPhase(call(tried, 'confirm'), recording(tried, 'confirm'));
    expect(await fields(tried)).toEqual({ phase1: 'phase1:{"reserved":10}', commit: 'commit' });
    const early = gid('layout-early');
    await layer.runPhase(call(early, 'cancel'), recording(early, 'cancel'));
    expect(await fields(early)).toEqual({ phase1: 'rollback', rollback: 'rollback' });
    // Other branches of a gid are hashes of their own, in the same slot.
    await layer.runPhase(call(tried, 'try', 'tcc', 'b2'), recording(tried, 'try-b2'));
    expect(await redis.hgetall(branchKey(tried, 'b2'))).toEqual({ phase1: 'phase1:{"recorded":"try-b2"}' });
    expect(hashTag(branchKey(tried, 'b2'))).toBe(tried);
    expect(hashTag(branchKey(tried, 'b1'))).toBe(tried);
    // A prefix with a hash tag of its own puts every branch in that slot, with the business keys tagged alike.
    const tagged = redisDataLayer(redis, { keyPrefix: `${RUN}{points}barrier:` });
    await tagged.runPhase(call(tried, 'try'), recording(tried, 'try-tagged'));
    expect(await redis.hgetall(`${RUN}{points}barrier:{${tried}}:b1`)).toEqual({ phase1: 'phase1:{"recorded":"try-tagged"}' });
    expect(hashTag(`${RUN}{points}barrier:{${tried}}:b1`)).toBe('points');
  });

  it('keeps an ongoing answer as the marker after the origin; a final answer replaces it; a rollback takes an ongoing phase 1 over (its field becomes the marker rollback)', async () => {
    const approved = gid('ongoing-layout');
    const asked = (g: string, phase: 'try' | 'confirm' | 'cancel') =>
      layer.runPhase(call(g, phase), (tx) => {
        record(tx, g, `${phase}:waiting`);
        return Promise.resolve(ongoing());
      });
    expect(await asked(approved, 'try')).toEqual({ kind: 'ongoing' });
    expect(await fields(approved)).toEqual({ phase1: 'phase1:{"$dtx":"ongoing"}' });
    await layer.runPhase(call(approved, 'try'), recording(approved, 'try', { $dtx: 'mine' }));
    // A result that has the marker's member is kept wrapped, never read as a marker.
    expect(await fields(approved)).toEqual({ phase1: 'phase1:{"$dtx":"result","value":{"$dtx":"mine"}}' });
    expect(await layer.runPhase(call(approved, 'try'), recording(approved, 'again'))).toEqual({ kind: 'ok', result: { $dtx: 'mine' }, duplicate: true, skipped: true });
    expect(await asked(approved, 'confirm')).toEqual({ kind: 'ongoing' });
    expect(await fields(approved)).toMatchObject({ commit: 'commit:{"$dtx":"ongoing"}' });
    await layer.runPhase(call(approved, 'confirm'), recording(approved, 'confirm', null));
    expect(await fields(approved)).toMatchObject({ commit: 'commit:null' });

    const cancelled = gid('ongoing-takeover');
    expect(await asked(cancelled, 'try')).toEqual({ kind: 'ongoing' });
    expect(await layer.runPhase(call(cancelled, 'cancel'), recording(cancelled, 'cancel'))).toMatchObject({ kind: 'ok', skipped: false });
    expect(await fields(cancelled)).toEqual({ phase1: 'rollback', rollback: 'rollback' });
    expect(await effects(cancelled)).toEqual(['try:waiting', 'cancel']);
    expect(await effects(approved)).toEqual(['try:waiting', 'try', 'confirm:waiting', 'confirm']);
  });

  it('calls the business method only when the barrier runs the phase: not for a duplicate, a rollback before its phase 1, a late phase 1', async () => {
    let calls = 0;
    const counted = (g: string, phase: string) =>
      queued((tx) => {
        calls++;
        record(tx, g, phase);
        return { recorded: phase };
      });
    const g = gid('calls');
    await layer.runPhase(call(g, 'try'), counted(g, 'try'));
    expect(await layer.runPhase(call(g, 'try'), counted(g, 'try'))).toMatchObject({ duplicate: true });
    expect(calls).toBe(1);
    const early = gid('calls-early');
    expect(await layer.runPhase(call(early, 'cancel'), counted(early, 'cancel'))).toMatchObject({ skipped: true, duplicate: false });
    expect(await layer.runPhase(call(early, 'try'), counted(early, 'try'))).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(calls).toBe(1);
  });

  it("gives each snippet its own KEYS and ARGV, the same source twice included, in queue order with the commands", async () => {
    const g = gid('slices');
    const setOne = `redis.call('SET', KEYS[1], ARGV[1] .. '/' .. #KEYS .. '/' .. #ARGV)`;
    const setTwo = `redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2] .. '/' .. #KEYS .. '/' .. #ARGV)`;
    const [k1, k2, k3, k4, list] = ['k1', 'k2', 'k3', 'k4', 'list'].map((name) => key(`${g}:${name}`));
    const answer = await layer.runPhase(
      call(g, 'try'),
      queued((tx) => {
        tx.script(setOne, [k1], ['one']);
        tx.command('RPUSH', list, 'after-first');
        tx.script(setTwo, [k2, k3], ['two', 'three']);
        tx.script(setOne, [k4], [4]);
        tx.script(`redis.call('RPUSH', KEYS[1], 'no-args:' .. #ARGV)`, [list]);
        return 'sliced';
      }),
    );
    expect(answer).toEqual({ kind: 'ok', result: 'sliced', duplicate: false, skipped: false });
    expect(await redis.mget(k1, k2, k3, k4)).toEqual(['one/1/1', 'two', 'three/2/2', '4/1/1']);
    expect(await redis.lrange(list, 0, -1)).toEqual(['after-first', 'no-args:0']);
  });

  it('a snippet that checks then writes: refuses with its reason and leaves the balance, or takes the points', async () => {
    const points = key(`${gid('points')}:points:alice`);
    await redis.set(points, 5);
    const reserve = (g: string, amount: number) =>
      layer.runPhase(call(g, 'try'), queued((tx) => {
        tx.script(
          `local b = tonumber(redis.call('GET', KEYS[1]) or '0')
          if b < tonumber(ARGV[1]) then return dtx_refuse('insufficient_points', 'not enough points') end
          redis.call('DECRBY', KEYS[1], ARGV[1])`,
          [points],
          [amount],
        );
        record(tx, g, 'try');
        return { reserved: amount };
      }));
    const refused = gid('points-refused');
    expect(await reserve(refused, 10)).toEqual({ kind: 'failed', message: 'not enough points', details: { reason: 'insufficient_points' } });
    expect(await redis.get(points)).toBe('5');
    // Nothing after the refusing snippet ran, and no barrier field is left.
    expect(await effects(refused)).toEqual([]);
    expect(await redis.exists(branchKey(refused))).toBe(0);
    const taken = gid('points-taken');
    expect(await reserve(taken, 3)).toEqual({ kind: 'ok', result: { reserved: 3 }, duplicate: false, skipped: false });
    expect(await reserve(taken, 3)).toEqual({ kind: 'ok', result: { reserved: 3 }, duplicate: true, skipped: true });
    expect(await redis.get(points)).toBe('2');
    expect(await effects(taken)).toEqual(['try']);
  });

  it('refuses to queue a refusing snippet after anything else (its writes would stay): the phase rejects and nothing runs', async () => {
    const g = gid('late-refusal');
    const work = queued((tx: RedisBranchTx) => {
      record(tx, g, 'try');
      tx.script(`return dtx_refuse('out_of_stock', 'no stock')`);
    });
    await expect(layer.runPhase(call(g, 'try'), work)).rejects.toThrow(/dtx_refuse\) must be the first thing queued/);
    const afterSnippet = gid('late-refusal-2');
    await expect(
      layer.runPhase(call(afterSnippet, 'try'), queued((tx) => {
        tx.script(`if false then return dtx_refuse('a', 'b') end redis.call('RPUSH', KEYS[1], 'checked')`, [effectsKey(afterSnippet)]);
        tx.script(`return dtx_refuse('c', 'd')`);
      })),
    ).rejects.toThrow(/must be the first thing queued/);
    for (const x of [g, afterSnippet]) {
      expect(await effects(x)).toEqual([]);
      expect(await redis.hlen(branchKey(x))).toBe(0);
    }
    // The same refusal queued first is answered as a refusal.
    expect(await layer.runPhase(call(g, 'try'), queued((tx) => tx.script(`return dtx_refuse('out_of_stock', 'no stock')`)))).toMatchObject({
      kind: 'failed',
      details: { reason: 'out_of_stock' },
    });
  });

  it('dtx_refuse stops the snippet even without `return`', async () => {
    const g = gid('no-return');
    const answer = await layer.runPhase(call(g, 'try'), queued((tx) => {
      tx.script(`dtx_refuse('out_of_stock', 'no stock') redis.call('RPUSH', KEYS[1], 'went on')`, [effectsKey(g)]);
    }));
    expect(answer).toEqual({ kind: 'failed', message: 'no stock', details: { reason: 'out_of_stock' } });
    expect(await effects(g)).toEqual([]);
  });

  it.each([
    ['a command on the wrong type', (tx: RedisBranchTx, list: string) => tx.command('INCR', list), /DTXOP queued operation 1 \(command INCR\) failed: WRONGTYPE/],
    ['a snippet on the wrong type', (tx: RedisBranchTx, list: string) => tx.script(`redis.call('INCR', KEYS[1])`, [list]), /snippet 1\) failed: WRONGTYPE/],
    ['a snippet returning redis.error_reply', (tx: RedisBranchTx) => tx.script(`return redis.error_reply('BOOM out of luck')`), /failed: BOOM out of luck/],
    ['a snippet with a Lua error', (tx: RedisBranchTx) => tx.script(`local t = nil; return t.field`), /attempt to index/],
  ] as const)('%s: the phase rejects (transient) and leaves no barrier field; a retry can succeed', async (_what, failing, message) => {
    const g = gid('error');
    const list = key(`${g}:list`);
    await redis.rpush(list, 'x');
    await expect(layer.runPhase(call(g, 'try'), queued((tx) => failing(tx, list)))).rejects.toThrow(message);
    expect(await redis.exists(branchKey(g))).toBe(0);
    expect(await layer.runPhase(call(g, 'try'), recording(g, 'try'))).toMatchObject({ kind: 'ok', duplicate: false });
    expect(await effects(g)).toEqual(['try']);
  });

  it('does not undo what ran before a failing command (Redis has no rollback): documented, so the failure is transient and the retry runs it again', async () => {
    const g = gid('partial');
    const list = key(`${g}:list`);
    await redis.rpush(list, 'x');
    await expect(
      layer.runPhase(call(g, 'try'), queued((tx) => {
        record(tx, g, 'before');
        tx.command('INCR', list);
      })),
    ).rejects.toThrow(/WRONGTYPE/);
    expect(await effects(g)).toEqual(['before']);
    expect(await redis.exists(branchKey(g))).toBe(0);
  });

  it('a phase whose snippet source does not compile rejects and writes nothing', async () => {
    const g = gid('syntax');
    await expect(
      layer.runPhase(call(g, 'try'), queued((tx) => {
        record(tx, g, 'try');
        tx.script(`this is not lua`);
      })),
    ).rejects.toThrow(/Error compiling script|user_script/);
    expect(await effects(g)).toEqual([]);
    expect(await redis.exists(branchKey(g))).toBe(0);
  });

  it('a BusinessFailure thrown in JS runs nothing queued and writes no field', async () => {
    const g = gid('js-failure');
    const answer = await layer.runPhase(call(g, 'try'), queued((tx) => {
      record(tx, g, 'try');
      throw new BusinessFailure('no stock', { reason: 'out_of_stock', left: 0 });
    }));
    expect(answer).toEqual({ kind: 'failed', message: 'no stock', details: { reason: 'out_of_stock', left: 0 } });
    expect(await effects(g)).toEqual([]);
    expect(await redis.exists(branchKey(g))).toBe(0);
  });

  it('an identical call that ran while the business method ran wins: the queued work is dropped, its result replayed', async () => {
    const g = gid('overtaken');
    const answer = await layer.runPhase(call(g, 'try'), async (tx) => {
      expect(await layer.runPhase(call(g, 'try'), recording(g, 'try', 'first'))).toMatchObject({ duplicate: false });
      record(tx, g, 'try');
      return 'second';
    });
    expect(answer).toEqual({ kind: 'ok', result: 'first', duplicate: true, skipped: true });
    expect(await effects(g)).toEqual(['try']);
  });

  it('a BusinessFailure of a method overtaken by an identical call answers that call\'s result, as SQL would after waiting for it', async () => {
    const g = gid('overtaken-failure');
    const answer = await layer.runPhase(call(g, 'try'), async () => {
      await layer.runPhase(call(g, 'try'), recording(g, 'try', 'first'));
      throw new BusinessFailure('insufficient points', { reason: 'insufficient_points' });
    });
    expect(answer).toEqual({ kind: 'ok', result: 'first', duplicate: true, skipped: true });
    // And a try overtaken by its cancel is refused as rolled back.
    const cancelled = gid('overtaken-cancel');
    const late = await layer.runPhase(call(cancelled, 'try'), async (tx) => {
      await layer.runPhase(call(cancelled, 'cancel'), recording(cancelled, 'cancel'));
      record(tx, cancelled, 'try');
    });
    expect(late).toMatchObject({ kind: 'failed', details: { reason: 'rolled_back' } });
    expect(await effects(cancelled)).toEqual([]);
  });

  it('refuses work queued after the business method returned', async () => {
    let kept: RedisBranchTx | undefined;
    const g = gid('closed');
    await layer.runPhase(call(g, 'try'), queued((tx) => {
      kept = tx;
      return null;
    }));
    expect(() => kept!.command('RPUSH', effectsKey(g), 'late')).toThrow(/after its business method returned/);
    expect(() => kept!.script(`return 1`)).toThrow(/after its business method returned/);
  });

  it('refuses arguments Redis cannot take and a client keyPrefix, at once', async () => {
    const g = gid('args');
    await expect(layer.runPhase(call(g, 'try'), queued((tx) => tx.command('SET', key('x'), {} as unknown as string)))).rejects.toThrow(
      /argument 2 of SET must be a string, a finite number or a Buffer/,
    );
    await expect(layer.runPhase(call(g, 'try'), queued((tx) => tx.command('INCRBY', key('x'), Number.NaN)))).rejects.toThrow(/finite number/);
    expect(await redis.exists(branchKey(g))).toBe(0);
    expect(() => redisDataLayer(client({ keyPrefix: 'app:' }))).toThrow(/keyPrefix/);
    expect(() => redisDataLayer(redis, { retentionMs: -1 })).toThrow(/retentionMs/);
    await expect(layer.runPhase(call('bad gid', 'try'), recording('x', 'try'))).rejects.toThrow(/invalid gid/);
  });

  it('expires a branch hash retentionMs after its last written field; 0 keeps it forever; duplicates do not extend it', async () => {
    const short = redisDataLayer(redis, { keyPrefix: BARRIER_PREFIX, retentionMs: 60_000 });
    const g = gid('ttl');
    await short.runPhase(call(g, 'try'), recording(g, 'try'));
    const ttl = await redis.pttl(branchKey(g));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // A duplicate writes no field, so it does not extend the hash (as SQL ages rows by creation).
    await redis.pexpire(branchKey(g), 30_000);
    await short.runPhase(call(g, 'try'), recording(g, 'try'));
    expect(await redis.pttl(branchKey(g))).toBeLessThanOrEqual(30_000);
    // A new field does.
    await short.runPhase(call(g, 'confirm'), recording(g, 'confirm'));
    expect(await redis.pttl(branchKey(g))).toBeGreaterThan(50_000);

    const byDefault = gid('ttl-default');
    await layer.runPhase(call(byDefault, 'cancel'), recording(byDefault, 'cancel'));
    const week = 7 * 24 * 60 * 60 * 1000;
    expect(await redis.pttl(branchKey(byDefault))).toBeGreaterThan(week - 60_000);
    expect(await redis.pttl(branchKey(byDefault))).toBeLessThanOrEqual(week);

    const forever = redisDataLayer(redis, { keyPrefix: BARRIER_PREFIX, retentionMs: 0 });
    const kept = gid('ttl-forever');
    await forever.runPhase(call(kept, 'try'), recording(kept, 'try'));
    expect(await redis.pttl(branchKey(kept))).toBe(-1);
    expect(await forever.deleteExpiredBarrierRows(0, 100)).toBe(0);
  });

  it('loads a composed script once: EVAL on its first use (NOSCRIPT), EVALSHA from then on', async () => {
    const own = client();
    const spied = redisDataLayer(own, { keyPrefix: BARRIER_PREFIX });
    const evals = vi.spyOn(own, 'eval');
    const evalshas = vi.spyOn(own, 'evalsha');
    // A source no other run has used, so Redis cannot have it cached yet.
    const snippet = `-- ${RUN}\nredis.call('RPUSH', KEYS[1], ARGV[1])`;
    const phase = (g: string) => spied.runPhase(call(g, 'try'), queued((tx) => tx.script(snippet, [effectsKey(g)], ['try'])));
    const first = gid('once');
    await phase(first);
    const composedEvals = evals.mock.calls.filter(([source]) => String(source).includes(snippet));
    expect(composedEvals).toHaveLength(1);
    const sha = createHash('sha1').update(String(composedEvals[0][0])).digest('hex');
    expect(await own.script('EXISTS', sha)).toEqual([1]);
    const second = gid('once');
    await phase(second);
    expect(evals.mock.calls.filter(([source]) => String(source).includes(snippet))).toHaveLength(1);
    // Tried once by SHA before the EVAL, then once for the second phase, which found it.
    expect(evalshas.mock.calls.filter(([s]) => s === sha)).toHaveLength(2);
    expect(await effects(first)).toEqual(['try']);
    expect(await effects(second)).toEqual(['try']);
  });

  it('runs a phase atomically: a concurrent MULTI reader never sees half of one, over 20 concurrent tries and cancels', async () => {
    const base = gid('atomic');
    const [free, held] = [key(`${base}:free`), key(`${base}:held`)];
    await redis.mset(free, 1000, held, 0);
    const gids = Array.from({ length: 20 }, (_, i) => `${base}-${i}`);
    // The business methods end at random moments, so the phases' scripts spread among the reads.
    const move = async (tx: RedisBranchTx, from: string, to: string) => {
      const readsBefore = reads;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
      // A whole read begins and ends while this phase is open, however loaded the machine: the
      // second read to end after the phase began also began after it.
      while (reads < readsBefore + 2) await new Promise((resolve) => setTimeout(resolve, 1));
      tx.command('DECRBY', from, 1);
      // Time spent between the two commands, inside the script.
      tx.script(`for i = 1, 2000 do redis.call('GET', KEYS[1]) end`, [from]);
      tx.command('INCRBY', to, 1);
    };
    const reader = client();
    let reads = 0;
    const halves: string[] = [];
    let done = false;
    // Invariants of whole phases: the two counters add up, and `held` counts the branches whose
    // try ran (phase-1 field of origin phase1) and whose cancel did not (no rollback field).
    const reading = (async () => {
      while (!done) {
        let multi = reader.multi().get(free).get(held);
        for (const g of gids) multi = multi.hgetall(branchKey(g));
        const replies = (await multi.exec())!.map(([error, value]) => {
          if (error) throw error;
          return value;
        });
        const [a, b] = replies.slice(0, 2).map(Number);
        const tried = (replies.slice(2) as Record<string, string>[]).filter((h) => h.phase1?.startsWith('phase1') && h.rollback === undefined).length;
        if (a + b !== 1000 || b !== tried) halves.push(`free ${a} + held ${b}, ${tried} tried`);
        reads++;
      }
    })();
    const answers = await Promise.all(
      gids.flatMap((g) => [
        layer.runPhase(call(g, 'try'), (tx) => move(tx, free, held)),
        layer.runPhase(call(g, 'cancel'), (tx) => move(tx, held, free)),
      ]),
    );
    done = true;
    await reading;
    expect(halves).toEqual([]);
    // The reads interleaved with the phases: each phase stayed open over at least one whole read.
    expect(reads).toBeGreaterThanOrEqual(2);
    // Each cancel undid its try, or its try was refused: everything is back.
    expect(await redis.mget(free, held)).toEqual(['1000', '0']);
    for (const [i, g] of gids.entries()) {
      const [tried, cancelled] = [answers[2 * i], answers[2 * i + 1]];
      expect(cancelled.kind).toBe('ok');
      if (tried.kind === 'failed') expect(tried.details).toEqual({ reason: 'rolled_back' });
      expect(await redis.hlen(branchKey(g))).toBe(2);
    }
  });

  it('works on a RESP2 connection as on RESP3 (the replies are arrays of strings)', async () => {
    const resp2 = redisDataLayer(client({ protocol: 2 as const }), { keyPrefix: BARRIER_PREFIX });
    const g = gid('resp2');
    const result = { text: 'a "quoted" ünïcode ☃', list: [1, null] };
    expect(await resp2.runPhase(call(g, 'try'), recording(g, 'try', result))).toMatchObject({ result, duplicate: false });
    expect(await resp2.runPhase(call(g, 'try'), recording(g, 'try'))).toEqual({ kind: 'ok', result, duplicate: true, skipped: true });
    expect(await resp2.runPhase(call(g, 'try', 'tcc'), queued((tx) => tx.script(`return dtx_refuse('x', 'y')`)))).toMatchObject({ duplicate: true });
  });
});
