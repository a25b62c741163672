/** A word of a Redis command or an argument of a snippet: numbers are sent as their decimal text. */
export type RedisArg = string | number | Buffer;

/**
 * What a business method on the Redis data layer receives as `context.tx`. It QUEUES work;
 * nothing reaches Redis while the method runs. Once the method has returned, the barrier runs
 * its inserts, its decision and, when the decision is to run the phase, the queued work in
 * order, as ONE Lua script: atomically, no other client sees a half state. Read what the method
 * needs with your own client (outside the atomic part); decide in a snippet what must be
 * decided atomically (enough stock, enough points).
 *
 * Redis does not roll a script back. Hence:
 * - a snippet that refuses (`return dtx_refuse(reason, message)`) must do so BEFORE it writes
 *   anything: what it wrote stays;
 * - a snippet that can refuse (its source names `dtx_refuse`) must be the FIRST thing queued:
 *   `script()` throws otherwise, because what was queued before it (a command, or another
 *   snippet that wrote after its own check) would stay written when it refuses. Put all the
 *   checks in that one snippet; it may write after them;
 * - a command or snippet that fails with a Redis error (WRONGTYPE, a Lua error,
 *   `redis.error_reply`) leaves the writes of the work queued before it; the barrier's fields
 *   are removed and the phase fails as transient (retried), so that work runs again. Check in a
 *   leading snippet what could make a later write fail.
 */
export interface RedisBranchTx {
  /** Queues one Redis command, e.g. `command('INCRBY', 'points:alice', 10)`. */
  command(name: string, ...args: RedisArg[]): void;
  /**
   * Queues a Lua snippet run with its own `KEYS` and `ARGV` (strings, as in any Redis script),
   * e.g. `script("redis.call('DECRBY', KEYS[1], ARGV[1])", ['points:alice'], [10])`. It may
   * refuse the branch with `return dtx_refuse(reason, message)`: the phase is answered
   * `failed` with `{ reason }` as details, like a BusinessFailure, and nothing after it runs. Its
   * return value is otherwise ignored. The source must be a constant of your code (values go
   * through `keys` and `args`): each distinct set of sources is a script Redis caches.
   */
  script(source: string, keys?: readonly (string | Buffer)[], args?: readonly RedisArg[]): void;
}

export type QueuedOp =
  | { type: 'command'; words: (string | Buffer)[] }
  | { type: 'script'; source: string; keys: (string | Buffer)[]; args: (string | Buffer)[] };

/** A snippet that can refuse: the only way to refuse is the helper, so its name in the source says it. */
const REFUSES = /\bdtx_refuse\b/;

function word(value: unknown, what: string): string | Buffer {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new TypeError(`RedisBranchTx: ${what} must be a string, a finite number or a Buffer, not ${value === null ? 'null' : typeof value}`);
}

/** The queue behind a RedisBranchTx, closed once its business method is done. */
export class QueuingBranchTx implements RedisBranchTx {
  readonly ops: QueuedOp[] = [];
  private closed = false;

  command(name: string, ...args: RedisArg[]): void {
    this.open();
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError('RedisBranchTx.command: the command name must be a non-empty string');
    this.ops.push({ type: 'command', words: [name, ...args.map((arg, i) => word(arg, `argument ${i + 1} of ${name}`))] });
  }

  script(source: string, keys: readonly (string | Buffer)[] = [], args: readonly RedisArg[] = []): void {
    this.open();
    if (typeof source !== 'string' || source.trim() === '') throw new TypeError('RedisBranchTx.script: the source must be a non-empty string');
    if (REFUSES.test(source) && this.ops.length > 0) {
      throw new Error(
        'RedisBranchTx.script: a snippet that can refuse (it calls dtx_refuse) must be the first thing queued: ' +
          'Redis does not undo the writes made before a refusal, so put all the checks in one snippet, queued first, then the writes',
      );
    }
    this.ops.push({
      type: 'script',
      source,
      keys: keys.map((key, i) => word(key, `key ${i + 1}`)),
      args: args.map((arg, i) => word(arg, `argument ${i + 1}`)),
    });
  }

  close(): void {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw new Error('RedisBranchTx: work queued after its business method returned (await everything inside the method)');
  }
}
