import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ParticipantGate, type GateOptions, type GateRefusal, type Permit } from './participant-gate.js';

type Admission = Permit | GateRefusal;

/** A gate on the fake clock: a fixed limit of `max` (not adaptive unless asked), breaker 3 failures / 1 s / 4 s. */
function gate(overrides: { max?: number; queueLimit?: number; minCallMs?: number; adaptive?: boolean; initial?: number; threshold?: number } = {}): ParticipantGate {
  const max = overrides.max ?? 2;
  const options: GateOptions = {
    limit: { max, initial: overrides.initial ?? max, slowAfterMs: 500, adaptive: overrides.adaptive ?? false },
    breaker: { failureThreshold: overrides.threshold ?? 3, openMs: 1_000, maxOpenMs: 4_000 },
    queueLimit: overrides.queueLimit ?? 100,
    minCallMs: overrides.minCallMs ?? 50,
    now: () => Date.now(),
  };
  return new ParticipantGate(options);
}

/** Lets resolved promises run their callbacks. */
const flush = () => vi.advanceTimersByTimeAsync(0);

/** Enters `n` calls, recording each admission as it comes (in `settled`, by index, in the order they came). */
function enterMany(g: ParticipantGate, n: number, budgetMs = 10_000, maxWaitMs?: number) {
  const admissions: (Admission | undefined)[] = new Array(n).fill(undefined);
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    void g.enter(budgetMs, maxWaitMs).then((a) => {
      admissions[i] = a;
      order.push(i);
    });
  }
  return { admissions, order };
}

const permit = (a: Admission | undefined): Permit => {
  expect(a?.kind).toBe('permit');
  return a as Permit;
};

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ParticipantGate: the limit and the queue', () => {
  it('never has more than the limit in flight, and grants waiting calls first come first served', async () => {
    const g = gate({ max: 3 });
    const { admissions, order } = enterMany(g, 10);
    await flush();
    expect(order).toEqual([0, 1, 2]);
    expect(g.snapshot()).toMatchObject({ inFlight: 3, queued: 7, limit: 3 });
    let maxInFlight = 0;
    // Release in a scrambled order: whichever slot frees, the oldest waiter gets it.
    for (const i of [1, 0, 2, 4, 3, 6, 5, 8, 7, 9]) {
      permit(admissions[i]).release('ok', 10);
      await flush();
      maxInFlight = Math.max(maxInFlight, g.snapshot().inFlight);
    }
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(g.snapshot()).toMatchObject({ inFlight: 0, queued: 0, granted: 10 });
  });

  it('releasing a permit twice frees one slot only', async () => {
    const g = gate({ max: 1 });
    const { admissions, order } = enterMany(g, 3);
    await flush();
    const first = permit(admissions[0]);
    first.release('ok', 5);
    first.release('ok', 5);
    await flush();
    expect(order).toEqual([0, 1]);
    expect(g.snapshot()).toMatchObject({ inFlight: 1, queued: 1 });
  });

  it('takes the time waited from the call budget: the permit says how long it waited and what is left', async () => {
    const g = gate({ max: 1 });
    const { admissions } = enterMany(g, 2, 1_000);
    await flush();
    expect(permit(admissions[0])).toMatchObject({ waitedMs: 0, timeoutMs: 1_000 });
    await vi.advanceTimersByTimeAsync(300);
    expect(admissions[1]).toBeUndefined();
    permit(admissions[0]).release('ok', 300);
    await flush();
    expect(permit(admissions[1])).toMatchObject({ waitedMs: 300, timeoutMs: 700 });
    expect(g.snapshot().waitedMsTotal).toBe(300);
  });

  it('queue_timeout when the budget is spent waiting (what is left could not pay for minCallMs), and the slot goes to the next one', async () => {
    const g = gate({ max: 1, minCallMs: 50 });
    const { admissions } = enterMany(g, 1, 10_000);
    void g.enter(1_000).then((a) => (admissions[1] = a));
    void g.enter(10_000).then((a) => (admissions[2] = a));
    await vi.advanceTimersByTimeAsync(949);
    expect(admissions[1]).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(admissions[1]).toEqual({ kind: 'queue_timeout', waitedMs: 950 });
    expect(g.snapshot()).toMatchObject({ queued: 1, refused: { queueTimeout: 1 } });
    permit(admissions[0]).release('ok', 10);
    await flush();
    expect(permit(admissions[2]).waitedMs).toBe(950);
    expect(g.snapshot()).toMatchObject({ inFlight: 1, queued: 0, granted: 2 });
  });

  it('queue_timeout once maxWaitMs passed (a phase-1 call at its transaction deadline), budget left or not', async () => {
    const g = gate({ max: 1 });
    const { admissions } = enterMany(g, 1);
    let second: Admission | undefined;
    void g.enter(10_000, 200).then((a) => (second = a));
    await vi.advanceTimersByTimeAsync(199);
    expect(second).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(second).toEqual({ kind: 'queue_timeout', waitedMs: 200 });
    // The slot freed later goes to nobody: the expired call is never granted.
    permit(admissions[0]).release('ok', 10);
    await flush();
    expect(g.snapshot()).toMatchObject({ inFlight: 0, queued: 0, granted: 1 });
  });

  it('a slot freed after maxWaitMs passed, before its timer ran (a busy event loop), does not go to the expired call', async () => {
    const g = gate({ max: 1 });
    const { admissions } = enterMany(g, 1);
    let late: Admission | undefined;
    let next: Admission | undefined;
    void g.enter(10_000, 200).then((a) => (late = a));
    void g.enter(10_000).then((a) => (next = a));
    await flush();
    // The clock moves past the 200 ms, but no timer has run yet: the release comes first.
    vi.setSystemTime(Date.now() + 300);
    permit(admissions[0]).release('ok', 300);
    await flush();
    expect(late).toEqual({ kind: 'queue_timeout', waitedMs: 300 });
    expect(permit(next).waitedMs).toBe(300);
    expect(g.snapshot()).toMatchObject({ inFlight: 1, queued: 0, granted: 2, refused: { queueTimeout: 1 } });
  });

  it('a call whose whole budget is below minCallMs is not sent even with a free slot', async () => {
    const g = gate({ max: 4, minCallMs: 50 });
    expect(await g.enter(49)).toEqual({ kind: 'queue_timeout', waitedMs: 0 });
    expect(g.snapshot()).toMatchObject({ inFlight: 0, refused: { queueTimeout: 1 } });
  });

  it('queue_full past queueLimit: refused at once, without waiting', async () => {
    const g = gate({ max: 1, queueLimit: 2 });
    const { admissions } = enterMany(g, 3);
    await flush();
    expect(await g.enter(10_000)).toEqual({ kind: 'queue_full', queued: 2 });
    expect(g.snapshot()).toMatchObject({ inFlight: 1, queued: 2, refused: { queueFull: 1 } });
    permit(admissions[0]).release('ok', 1);
    await flush();
    // Room again.
    let next: Admission | undefined;
    void g.enter(10_000).then((a) => (next = a));
    await flush();
    expect(next).toBeUndefined();
    expect(g.snapshot().queued).toBe(2);
  });

  it('setMaxInFlight: a higher ceiling grants waiting calls at once, a lower one holds new calls until in flight is below it', async () => {
    const g = gate({ max: 1 });
    const { admissions, order } = enterMany(g, 4);
    await flush();
    expect(order).toEqual([0]);
    g.setMaxInFlight(3);
    await flush();
    expect(order).toEqual([0, 1, 2]);
    expect(g.snapshot()).toMatchObject({ inFlight: 3, queued: 1, limit: 3, maxInFlight: 3 });
    g.setMaxInFlight(1);
    expect(g.snapshot()).toMatchObject({ limit: 1, maxInFlight: 1 });
    permit(admissions[0]).release('ok', 1);
    permit(admissions[1]).release('ok', 1);
    await flush();
    expect(order).toEqual([0, 1, 2]);
    permit(admissions[2]).release('ok', 1);
    await flush();
    expect(order).toEqual([0, 1, 2, 3]);
    expect(g.snapshot().inFlight).toBe(1);
  });

  it('adaptive: transient answers shrink the limit, and fewer calls go at once', async () => {
    const g = gate({ max: 10, initial: 10, adaptive: true, threshold: 0 });
    const { admissions } = enterMany(g, 10);
    await flush();
    for (let i = 0; i < 10; i++) permit(admissions[i]).release('transient', 1_000);
    expect(g.snapshot().limit).toBe(3); // 10 * 0.9^10 = 3.49
    const next = enterMany(g, 5);
    await flush();
    expect(next.order).toEqual([0, 1, 2]);
  });

  it('drainSeconds: the queue over the limit times the recent answer time, between 1 and 30 s', async () => {
    const g = gate({ max: 2 });
    expect(g.drainSeconds()).toBe(1);
    const { admissions } = enterMany(g, 2);
    await flush();
    permit(admissions[0]).release('ok', 2_000);
    await flush();
    enterMany(g, 9);
    await flush();
    // 8 waiting over a limit of 2, 2 s per answer.
    expect(g.snapshot().queued).toBe(8);
    expect(g.drainSeconds()).toBe(8);
    enterMany(g, 100);
    expect(g.drainSeconds()).toBe(30);
  });
});

describe('ParticipantGate: the circuit breaker', () => {
  it('refuses with breaker_open once threshold transient answers came in a row, saying when it probes again', async () => {
    const g = gate({ max: 5, threshold: 3 });
    const { admissions } = enterMany(g, 3);
    await flush();
    for (const a of admissions) permit(a).release('transient', 10);
    expect(await g.enter(10_000)).toEqual({ kind: 'breaker_open', retryInMs: 1_000 });
    await vi.advanceTimersByTimeAsync(400);
    expect(await g.enter(10_000)).toEqual({ kind: 'breaker_open', retryInMs: 600 });
    expect(g.snapshot()).toMatchObject({ breaker: 'open', breakerRetryInMs: 600, breakerOpened: 1, refused: { breakerOpen: 2 } });
  });

  it('409 answers (failed) are answers: they never open it', async () => {
    const g = gate({ max: 1, threshold: 2 });
    for (let i = 0; i < 10; i++) permit(await g.enter(10_000)).release('failed', 10);
    expect(g.snapshot()).toMatchObject({ breaker: 'closed', breakerOpened: 0 });
    expect((await g.enter(10_000)).kind).toBe('permit');
  });

  it('releases every waiting call at once with breaker_open when it opens', async () => {
    const g = gate({ max: 2, threshold: 2 });
    const { admissions, order } = enterMany(g, 5);
    await flush();
    expect(order).toEqual([0, 1]);
    permit(admissions[0]).release('transient', 10);
    await flush();
    expect(order).toEqual([0, 1, 2]);
    permit(admissions[1]).release('transient', 10);
    await flush();
    // No time passed: the two still waiting got their refusal from the opening itself.
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(admissions[3]).toEqual({ kind: 'breaker_open', retryInMs: 1_000 });
    expect(admissions[4]).toEqual({ kind: 'breaker_open', retryInMs: 1_000 });
    expect(g.snapshot()).toMatchObject({ breaker: 'open', queued: 0, inFlight: 1 });
    // The call in flight when it opened fails too: it does not extend the opening.
    permit(admissions[2]).release('transient', 10);
    expect(g.snapshot()).toMatchObject({ breakerRetryInMs: 1_000, breakerOpened: 1, inFlight: 0 });
  });

  it('half-open: exactly one probe goes; its answer closes the breaker and the limit starts again from initial', async () => {
    const g = gate({ max: 8, initial: 2, adaptive: true, threshold: 2 });
    // Grow the limit a little first.
    for (let i = 0; i < 4; i++) {
      const { admissions } = enterMany(g, 2);
      await flush();
      for (const a of admissions) permit(a).release('ok', 5);
    }
    expect(g.snapshot().limit).toBeGreaterThan(2);
    for (let i = 0; i < 2; i++) permit(await g.enter(10_000)).release('transient', 5);
    expect(g.snapshot().breaker).toBe('open');
    expect(g.snapshot().limit).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(g.snapshot().breaker).toBe('half_open');
    const { admissions } = enterMany(g, 4);
    await flush();
    expect(admissions.map((a) => a?.kind)).toEqual(['permit', 'breaker_open', 'breaker_open', 'breaker_open']);
    permit(admissions[0]).release('ok', 5);
    expect(g.snapshot()).toMatchObject({ breaker: 'closed', limit: 2, breakerRetryInMs: null });
    const after = enterMany(g, 3);
    await flush();
    expect(after.admissions.map((a) => a?.kind)).toEqual(['permit', 'permit', undefined]);
  });

  it('a failed probe opens it again for twice as long, up to BREAKER_OPEN_MAX_MS', async () => {
    const g = gate({ max: 4, threshold: 1 });
    permit(await g.enter(10_000)).release('transient', 5);
    const openFor: number[] = [g.snapshot().breakerRetryInMs!];
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(openFor[openFor.length - 1]);
      permit(await g.enter(10_000)).release('transient', 5);
      openFor.push(g.snapshot().breakerRetryInMs!);
    }
    expect(openFor).toEqual([1_000, 2_000, 4_000, 4_000, 4_000]);
  });
});

describe('ParticipantGate: time-outs our own queue caused', () => {
  it('a call that waited and then ran out of its shortened timeout does not count against the breaker; calls that fail outright do', async () => {
    const g = gate({ max: 1, threshold: 2 });
    const first = enterMany(g, 1, 1_000);
    const queued = enterMany(g, 1, 1_000);
    await flush();
    vi.advanceTimersByTime(600);
    permit(first.admissions[0]).release('ok', 600);
    await flush();
    // Waited 600 ms of its 1 000: 400 ms left, all spent, no answer.
    const shortened = permit(queued.admissions[0]);
    expect(shortened.timeoutMs).toBe(400);
    vi.advanceTimersByTime(400);
    shortened.release('transient', 400);
    await flush();
    // Two outright failures open it (threshold 2): the shortened one was not the first of them.
    const failNow = async () => {
      const { admissions } = enterMany(g, 1, 1_000);
      await flush();
      permit(admissions[0]).release('transient', 10);
      await flush();
    };
    await failNow();
    expect(g.snapshot().breaker).toBe('closed');
    await failNow();
    expect(g.snapshot().breaker).toBe('open');
  });
});
