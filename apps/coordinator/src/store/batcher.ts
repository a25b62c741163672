/**
 * Group commit. Callers submit operations one by one; the batcher hands them to `flush` in
 * batches, so the writes of concurrent transactions share one statement and one commit.
 *
 * - Nothing waits for a timer: an operation that arrives while fewer than `maxInFlight`
 *   batches are running is flushed at once (alone, at low load), and whatever arrives while
 *   every slot is busy goes in the next batch. Batches grow with the load, latency does not.
 * - Operations on the same key (a gid) never share a batch and never run at once: the second
 *   waits for the first to be done, so each one stays a compare-and-set of its own that sees
 *   the result of the one before it.
 * - Each caller learns only its own outcome: `flush` settles every operation of its batch.
 *
 * The store uses one for its writes (group commit) and one for single-transaction reads, whose
 * keys are unique so that reads of one gid may share a batch.
 */
export interface BatchedOp<T> {
  readonly key: string;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export class Batcher<Op extends BatchedOp<never>> {
  private readonly queue: Op[] = [];
  private readonly busyKeys = new Set<string>();
  private inFlight = 0;

  constructor(
    private readonly flush: (batch: Op[]) => Promise<void>,
    private readonly options: { maxInFlight: number; maxBatch: number },
  ) {}

  submit(op: Op): void {
    this.queue.push(op);
    this.pump();
  }

  /** Operations waiting for a slot, and batches running (for tests and metrics). */
  get pending(): { queued: number; inFlight: number } {
    return { queued: this.queue.length, inFlight: this.inFlight };
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return; // everything queued waits for a key still in flight
      this.inFlight++;
      void this.run(batch);
    }
  }

  /** The oldest operations whose keys are free, one per key, in arrival order. */
  private takeBatch(): Op[] {
    const batch: Op[] = [];
    for (let i = 0; i < this.queue.length && batch.length < this.options.maxBatch; ) {
      const op = this.queue[i];
      if (this.busyKeys.has(op.key)) {
        i++;
        continue;
      }
      this.busyKeys.add(op.key);
      batch.push(op);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private async run(batch: Op[]): Promise<void> {
    try {
      await this.flush(batch);
    } catch (error) {
      // flush settles its operations itself; this only guards against a flush that threw.
      for (const op of batch) op.reject(error);
    } finally {
      for (const op of batch) this.busyKeys.delete(op.key);
      this.inFlight--;
      this.pump();
    }
  }
}
