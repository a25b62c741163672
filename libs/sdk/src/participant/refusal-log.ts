/** How long refused calls are counted before one line reports them. */
export const REFUSAL_LOG_WINDOW_MS = 60_000;

/**
 * Says that calls were refused for their signature without a line per call: anyone who reaches
 * the participant can send such calls, and a line each would let them flood the log. The
 * first refusal after a quiet window is said at once; the rest of the window is counted and
 * reported in one line at its end. Lines hold only the SDK's own codes, nothing of the call.
 */
export class RefusalLog {
  private readonly counts = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly warn: (line: string) => void,
    private readonly windowMs: number = REFUSAL_LOG_WINDOW_MS,
  ) {}

  record(code: string): void {
    if (this.timer === null) {
      this.warn(`refused a call: ${code} (PROTOCOL.md 5.5); further refusals are reported every ${this.windowMs / 1000} s`);
      this.openWindow();
      return;
    }
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.counts.clear();
  }

  private openWindow(): void {
    // unref: a pending report must not keep a process alive that is otherwise done.
    this.timer = setTimeout(() => this.endWindow(), this.windowMs).unref();
  }

  private endWindow(): void {
    this.timer = null;
    if (this.counts.size === 0) return;
    const total = [...this.counts.values()].reduce((sum, count) => sum + count, 0);
    const byCode = [...this.counts].map(([code, count]) => `${code} x${count}`).join(', ');
    this.counts.clear();
    this.warn(`refused ${total} more call(s) in the last ${this.windowMs / 1000} s: ${byCode}`);
    // A steady stream of refusals gives one line per window, not one per quiet spell.
    this.openWindow();
  }
}
