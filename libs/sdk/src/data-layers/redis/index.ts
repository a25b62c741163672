import { ID_PATTERN, type Json, type PhaseCallBody } from '@nest-dtx/protocol';
import type { Cluster, Redis } from 'ioredis';
import { barrierKind, barrierOutcome, ongoingOutcome, type BarrierDecision, type BarrierKind, type BarrierOutcome, type BarrierRunOptions } from '../core/barrier-rules.js';
import { BusinessFailure } from '../core/business-failure.js';
import type { BusinessAnswer, BusinessWork, DtxDataLayer } from '../core/data-layer.js';
import { isOngoingAnswer, type OngoingAnswer } from '../core/ongoing-answer.js';
import { ONGOING_MARKER_TEXT, readStoredAnswer, storedAnswerText } from '../core/stored-answer.js';
import { BASE_SCRIPT, composeScript, phasePlan, type BarrierScript, type PhasePlan } from './barrier-script.js';
import { QueuingBranchTx, type QueuedOp, type RedisBranchTx } from './branch-tx.js';

export type { RedisArg, RedisBranchTx } from './branch-tx.js';

/** An ioredis client: a Redis, or a Cluster (EVALSHA is routed by the first key, the branch's hash). */
export type RedisClient = Redis | Cluster;

export interface RedisDataLayerOptions {
  /** Prefix of the barrier's keys. Default `dtx:barrier:`. */
  keyPrefix?: string;
  /**
   * How long a branch's barrier hash is kept after its last field was written, in ms (PEXPIRE).
   * Default 7 days; 0 keeps it forever. Set it beyond the longest time a transaction can stay in
   * doubt, as the SQL layers' barrierRetentionMs (which this layer does not read: Redis expires
   * the hashes itself).
   */
  retentionMs?: number;
}

export const REDIS_BARRIER_DEFAULTS = { keyPrefix: 'dtx:barrier:', retentionMs: 7 * 24 * 60 * 60 * 1000 } as const;

/**
 * How many composed scripts (sets of snippet sources) the layer remembers the SHA of. Snippet
 * sources are code constants, so an app has a handful; the bound only keeps an app that builds
 * sources dynamically (which it should not: values go through KEYS/ARGV) from growing without
 * end. A forgotten script is composed and hashed again, nothing more.
 */
const MAX_CACHED_SCRIPTS = 256;

/** The rules that keep rows (a workflow's resume keeps none and never reaches a data layer). */
const BARRIER_KINDS = ['phase1', 'commit', 'rollback', 'check', 'undo'] as const satisfies readonly BarrierKind[];
type RowKind = (typeof BARRIER_KINDS)[number];

/** What the barrier script answered, read. */
type ScriptReply =
  | { kind: 'done'; decision: BarrierDecision; stored: Json }
  | { kind: 'run' }
  | { kind: 'refused'; reason: string; message: string };

/**
 * The barrier for participants whose state lives in Redis. A branch's barrier is one hash,
 * `<keyPrefix>{<gid>}:<branchId>`, one field per barrier row (`phase1`, `commit`,
 * `rollback`; phase 1's result JSON in the phase-1 field), expiring `retentionMs` after its last
 * field was written. Business methods receive a RedisBranchTx (see there) on which they queue
 * commands and Lua snippets.
 *
 * A phase is at most two scripts, each atomic:
 * 1. a probe: the barrier's inserts and decision; unless the decision is to run the phase, that
 *    is the whole phase (a duplicate, a rollback before its phase 1, a late phase 1) and the
 *    business method is not called, as on the SQL layers; else the probe writes nothing;
 * 2. the business method runs in JS and queues its work; then ONE script makes the inserts again,
 *    decides again (another call for the branch may have come in between; then the queued work
 *    is dropped and that decision answered) and, when it is still `run`, runs the queued
 *    commands and snippets in order and stores the answer in the phase's field (phase 1's
 *    result; the ongoing marker for `ongoing()`, with which the queued work commits; a rollback
 *    takes a phase 1 still ongoing over). Two repeats of an ongoing call that run at the same
 *    moment may both apply their work when both answer ongoing again (the SQL layers lock the
 *    row and run them one after the other); one that answers for good is applied once. A snippet that refuses, or a
 *    Redis error, removes the fields this script wrote (see RedisBranchTx for what Redis cannot
 *    undo). A BusinessFailure thrown by the method is answered `failed` (after asking the
 *    barrier again, in case an identical call ran meanwhile); any other error rejects; in both
 *    cases nothing queued runs.
 * The decisions come from core/barrier-rules.ts: every possible input is decided there and
 * handed to the script as a table (barrier-script.ts). Scripts go by EVALSHA, then EVAL when
 * Redis answers NOSCRIPT (which also caches it): defineCommand would add a method to the app's
 * client for every composed script, and does the same EVALSHA/EVAL underneath.
 *
 * Redis Cluster: every key a phase touches must be in the branch hash's slot. Its hash tag is
 * the gid, unless `keyPrefix` has one of its own (the first `{...}` of a key is its tag):
 * `keyPrefix: '{points}dtx:'` puts every barrier hash in the slot of keys like
 * `{points}:alice`. Queued commands' keys go through ARGV (the layer cannot know which words are
 * keys), so a client option `keyPrefix` (which ioredis adds to KEYS only) is refused. (Tested on
 * a single Redis only, not on a real cluster.)
 *
 * No XA (Redis has no prepared transactions): XaAction methods are refused at start-up.
 */
class RedisDataLayer implements DtxDataLayer<RedisBranchTx> {
  readonly description = 'Redis';
  private readonly keyPrefix: string;
  private readonly retentionMs: number;
  private readonly plans: Record<RowKind, PhasePlan>;
  /** Composed scripts by their snippets' sources, least recently used first. */
  private readonly scripts = new Map<string, BarrierScript>();

  constructor(
    private readonly redis: RedisClient,
    options: RedisDataLayerOptions = {},
  ) {
    this.keyPrefix = options.keyPrefix ?? REDIS_BARRIER_DEFAULTS.keyPrefix;
    this.retentionMs = options.retentionMs ?? REDIS_BARRIER_DEFAULTS.retentionMs;
    if (typeof this.keyPrefix !== 'string') throw new TypeError('redisDataLayer: keyPrefix must be a string');
    if (!Number.isSafeInteger(this.retentionMs) || this.retentionMs < 0) {
      throw new RangeError(`redisDataLayer: retentionMs must be a whole number of ms, 0 or more (0 = keep forever), not ${String(options.retentionMs)}`);
    }
    const clientPrefix = (redis.options as { keyPrefix?: unknown } | undefined)?.keyPrefix;
    if (clientPrefix) {
      throw new Error(
        `redisDataLayer: the ioredis client has the option keyPrefix, which ioredis adds to a script's KEYS but not to ` +
          'the words of the queued commands: give the layer a client without it (the layer has its own keyPrefix option)',
      );
    }
    this.plans = Object.fromEntries(BARRIER_KINDS.map((kind) => [kind, phasePlan(kind)])) as Record<RowKind, PhasePlan>;
  }

  async runPhase(call: PhaseCallBody, work: BusinessWork<RedisBranchTx>, options?: BarrierRunOptions): Promise<BarrierOutcome> {
    // The dispatcher validated them already; checked again because they become a key.
    for (const [name, value] of [['gid', call.gid], ['branchId', call.branchId]] as const) {
      if (typeof value !== 'string' || !ID_PATTERN.test(value)) throw new Error(`redisDataLayer: invalid ${name} ${JSON.stringify(value)}`);
    }
    const kind = barrierKind(call.phase, options);
    if (kind === 'resume') throw new Error('redisDataLayer: a workflow\'s resume does not go through a barrier');
    const plan = this.plans[kind];
    const branch = `${this.keyPrefix}{${call.gid}}:${call.branchId}`;
    const probe = await this.execute(plan, branch, { probe: true });
    if (probe.kind === 'done') return barrierOutcome(call, probe.decision, probe.stored);

    const tx = new QueuingBranchTx();
    let answer: BusinessAnswer;
    try {
      answer = await work(tx);
    } catch (error) {
      if (!(error instanceof BusinessFailure)) throw error;
      // The method refused on what it read; if an identical call ran (or its rollback came)
      // meanwhile, that is the answer, as on SQL where this call would have waited for it.
      const again = await this.execute(plan, branch, { probe: true });
      if (again.kind === 'done') return barrierOutcome(call, again.decision, again.stored);
      return { kind: 'failed', message: error.message, details: error.details };
    } finally {
      tx.close();
    }
    let ongoing: OngoingAnswer | null = null;
    let result: Json = null;
    if (isOngoingAnswer(answer)) ongoing = answer;
    else result = answer ?? null;
    // Throws (a plain error: transient) on what JSON cannot hold (a BigInt, a cycle), before anything runs.
    const answerText = storedAnswerText(ongoing ? { kind: 'ongoing' } : { kind: 'final', result });
    const reply = await this.execute(plan, branch, { probe: false, ops: tx.ops, answerText, ongoing: ongoing !== null });
    switch (reply.kind) {
      case 'done':
        if (reply.decision.kind !== 'run') return barrierOutcome(call, reply.decision, reply.stored);
        return ongoing ? ongoingOutcome(ongoing) : barrierOutcome(call, reply.decision, result);
      case 'refused':
        return { kind: 'failed', message: reply.message, details: { reason: reply.reason } };
      case 'run':
        throw new Error('redisDataLayer: the barrier script answered a probe to a phase');
    }
  }

  readonly expiresRowsItself = true;

  /** 0: Redis expires the barrier hashes itself (PEXPIRE to retentionMs at every write); there is nothing to delete. */
  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }

  private async execute(
    plan: PhasePlan,
    branch: string,
    run: { probe: true } | { probe: false; ops: readonly QueuedOp[]; answerText: string; ongoing: boolean },
  ): Promise<ScriptReply> {
    const keys: (string | Buffer)[] = [branch];
    const argv: (string | Buffer)[] = [];
    const shapes: (string | number)[][] = [];
    let script = BASE_SCRIPT;
    if (!run.probe) {
      const sources = [...new Set(run.ops.flatMap((op) => (op.type === 'script' ? [op.source] : [])))];
      script = this.scriptFor(sources);
      for (const op of run.ops) {
        if (op.type === 'command') {
          shapes.push(['c', op.words.length]);
          argv.push(...op.words);
        } else {
          shapes.push(['s', sources.indexOf(op.source) + 1, op.keys.length, op.args.length]);
          keys.push(...op.keys);
          argv.push(...op.args);
        }
      }
    }
    const header = JSON.stringify({
      inserts: plan.inserts,
      decisions: plan.luaTable,
      // false, not null: cjson reads null as a value Lua takes for true.
      answerSlot: plan.answerField?.slot ?? false,
      answerOngoing: !run.probe && run.ongoing,
      ongoingText: ONGOING_MARKER_TEXT,
      probe: run.probe,
      retentionMs: this.retentionMs,
      ops: shapes,
    });
    const stored = !run.probe && plan.answerField ? `${plan.answerField.origin}:${run.answerText}` : '';
    return this.read(plan, await this.evaluate(script, keys, [header, stored, ...argv]));
  }

  private async evaluate(script: BarrierScript, keys: (string | Buffer)[], argv: (string | Buffer)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(script.sha, keys.length, ...keys, ...argv);
    } catch (error) {
      // Not (or no longer: SCRIPT FLUSH, a restart, a failover) in Redis's script cache.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.redis.eval(script.source, keys.length, ...keys, ...argv);
    }
  }

  private read(plan: PhasePlan, reply: unknown): ScriptReply {
    const words: unknown[] = Array.isArray(reply) ? (reply as unknown[]).map((w) => (Buffer.isBuffer(w) ? w.toString('utf8') : w)) : [];
    const [status, a, b, c] = words;
    if (status === 'run') return { kind: 'run' };
    if (status === 'refused' && typeof a === 'string' && typeof b === 'string') return { kind: 'refused', reason: a, message: b };
    if (status === 'done' && typeof a === 'string') {
      const decision = plan.decisions.get(a);
      if (decision) {
        const answer = b === '1' && typeof c === 'string' ? readStoredAnswer(c) : null;
        return { kind: 'done', decision, stored: answer?.kind === 'final' ? answer.result : null };
      }
    }
    throw new Error(`redisDataLayer: unexpected reply of the barrier script: ${JSON.stringify(reply)}`);
  }

  private scriptFor(sources: readonly string[]): BarrierScript {
    if (sources.length === 0) return BASE_SCRIPT;
    const id = JSON.stringify(sources);
    let script = this.scripts.get(id);
    if (script) this.scripts.delete(id);
    else script = composeScript(sources);
    this.scripts.set(id, script);
    if (this.scripts.size > MAX_CACHED_SCRIPTS) this.scripts.delete(this.scripts.keys().next().value!);
    return script;
  }
}

/**
 * The barrier on an ioredis client, for participants whose state lives in Redis. Business
 * methods receive a RedisBranchTx as `context.tx`: they queue commands (`tx.command`) and Lua
 * snippets (`tx.script`), which run atomically with the barrier once the method returns.
 */
export function redisDataLayer(redis: RedisClient, options?: RedisDataLayerOptions): DtxDataLayer<RedisBranchTx> {
  return new RedisDataLayer(redis, options);
}
