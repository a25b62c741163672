import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RefusalLog } from './refusal-log.js';

describe('RefusalLog', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says the first refusal at once, then one line per window with the counts, and nothing once quiet', () => {
    const lines: string[] = [];
    const log = new RefusalLog((line) => lines.push(line), 60_000);
    log.record('SIGNATURE_INVALID');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('SIGNATURE_INVALID');
    for (let i = 0; i < 500; i++) log.record(i % 2 ? 'SIGNATURE_INVALID' : 'SIGNATURE_MISSING');
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(60_000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('refused 500 more call(s) in the last 60 s: SIGNATURE_MISSING x250, SIGNATURE_INVALID x250');
    // A steady stream keeps one line per window.
    log.record('SIGNATURE_EXPIRED');
    expect(lines).toHaveLength(2);
    vi.advanceTimersByTime(60_000);
    expect(lines[2]).toBe('refused 1 more call(s) in the last 60 s: SIGNATURE_EXPIRED x1');
    // A quiet window ends silently; the next refusal is said at once again.
    vi.advanceTimersByTime(60_000);
    expect(lines).toHaveLength(3);
    log.record('SIGNATURE_MISSING');
    expect(lines).toHaveLength(4);
    log.close();
    vi.advanceTimersByTime(120_000);
    expect(lines).toHaveLength(4);
  });
});
