import { describe, expect, it } from 'vitest';
import { DatabaseTime, MAX_SAMPLE_ROUND_TRIP_MS } from './database-clock.js';

/** A monotonic clock the test moves by hand. */
function manualClock(start = 1_000) {
  let at = start;
  return { read: () => at, advance: (ms: number) => (at += ms) };
}

describe('DatabaseTime', () => {
  it('before any sample, falls back to this machine\'s clock', () => {
    const time = new DatabaseTime(manualClock().read);
    expect(time.measured).toBe(false);
    expect(Math.abs(time.now() - Date.now())).toBeLessThan(50);
  });

  it('reads the database time as the monotonic clock plus the offset taken at the middle of the round trip', () => {
    const mono = manualClock(5_000);
    const time = new DatabaseTime(mono.read);
    // Sent at 5000, answered at 5010: the database read its clock at about 5005, and said 1_700_000_000_000.
    expect(time.observe({ databaseMs: 1_700_000_000_000, sentAt: 5_000, receivedAt: 5_010 })).toBe(true);
    mono.advance(10);
    expect(time.now()).toBe(1_700_000_000_005);
    expect(time.uncertaintyMs).toBe(5);
    mono.advance(60_000);
    expect(time.now()).toBe(1_700_000_060_005);
    expect(time.msUntil(new Date(1_700_000_060_105))).toBe(100);
    expect(time.msUntil(new Date(1_700_000_000_000))).toBe(-60_005);
  });

  it('is not moved by this machine\'s wall clock at all', () => {
    const mono = manualClock();
    const time = new DatabaseTime(mono.read);
    time.observe({ databaseMs: 42_000, sentAt: 1_000, receivedAt: 1_000 });
    // Whatever Date.now() says (it is not read once measured), the reading follows the monotonic clock only.
    const before = time.now();
    mono.advance(250);
    expect(time.now() - before).toBe(250);
  });

  it('refuses a sample whose round trip is too slow to say when the database read its clock, and keeps the last one', () => {
    const mono = manualClock(0);
    const time = new DatabaseTime(mono.read);
    time.observe({ databaseMs: 10_000, sentAt: 0, receivedAt: 2 });
    expect(time.observe({ databaseMs: 99_999_999, sentAt: 0, receivedAt: MAX_SAMPLE_ROUND_TRIP_MS + 1 })).toBe(false);
    expect(time.observe({ databaseMs: 99_999_999, sentAt: 10, receivedAt: 5 })).toBe(false);
    expect(time.now()).toBe(9_999);
  });

  it('prefers a precise sample to a much slower one for a minute, then takes what comes', () => {
    const mono = manualClock(0);
    const time = new DatabaseTime(mono.read);
    time.observe({ databaseMs: 10_000, sentAt: 0, receivedAt: 2 });
    // 200 ms round trip (the answer waited in a busy event loop): not taken while the precise one is fresh.
    expect(time.observe({ databaseMs: 10_500, sentAt: 400, receivedAt: 600 })).toBe(false);
    expect(time.uncertaintyMs).toBe(1);
    expect(time.observe({ databaseMs: 70_003, sentAt: 60_002, receivedAt: 60_202 })).toBe(true);
    expect(time.uncertaintyMs).toBe(100);
  });

  it('follows a later sample (the database clock stepped, or the clocks drifted)', () => {
    const mono = manualClock(0);
    const time = new DatabaseTime(mono.read);
    time.observe({ databaseMs: 10_000, sentAt: 0, receivedAt: 0 });
    mono.advance(10_000);
    time.observe({ databaseMs: 20_003, sentAt: 10_000, receivedAt: 10_000 });
    expect(time.now()).toBe(20_003);
  });
});
