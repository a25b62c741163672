/**
 * The engine with a fake store and fake participants: the real writer, processors and state
 * machine, no Postgres and no sockets. What it must do is PROTOCOL.md's: phase 2 only after a
 * durable decision, one phase-1 call per branch, decisions retried on a fresh read when another
 * writer moved the transaction, refusals as the machine words them.
 */
import { Logger } from '@nestjs/common';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DataSource } from 'typeorm';
import type { CallOutcome, PhaseCallBody } from '@nest-dtx/protocol';
import { InProcessTxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig, loadCoordinatorEnv } from '../config/coordinator.config.js';
import type { ParticipantInvoker } from '../invoker/participant-invoker.service.js';
import { DependencyOutages } from '../logging/dependency-outages.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { RegisteredParticipant } from '../participants/participant-signing.js';
import type { ParticipantsService } from '../participants/participants.service.js';
import { DatabaseTime } from '../store/database-clock.js';
import type { BranchChange, BranchRecord, EventInput, LoadedTx, NewBranch, NewTransaction, Phase1Outcome, TxChange, TxForAdd } from '../store/records.js';
import type { AppliedChange, BranchAnswer, TransactionStore } from '../store/transaction.store.js';
import { BranchCaller, LeaseLostError } from './branch-caller.js';
import { BranchNotFoundError, InvalidRequestError, NotParticipantOwnerError, TooManyBranchesError, TransactionNotFoundError, TransactionRefusedError } from './errors.js';
import { ModeRegistry } from './processors/mode-registry.js';
import { MsgProcessor } from './processors/msg.processor.js';
import { SagaProcessor } from './processors/saga.processor.js';
import { TccProcessor } from './processors/tcc.processor.js';
import { TwoPhaseCommitProcessor } from './processors/two-phase-commit.processor.js';
import { WorkflowProcessor } from './processors/workflow.processor.js';
import { TransactionEngine } from './transaction-engine.service.js';
import { TransactionRound } from './transaction-round.js';
import { TransactionWriter } from './transaction-writer.js';
import type { BusMessage } from '../bus/tx-event-bus.js';
import type { MadeDue } from '../store/records.js';

/** The transaction log in memory, with the store's compare-and-set rules; it records every write. */
class FakeStore {
  readonly txs = new Map<string, LoadedTx>();
  readonly writes: string[] = [];
  /** The status each compare-and-set tried to write, won or lost. */
  readonly applyAttempts: string[] = [];
  /** The branch changes of every compare-and-set that won, and the outcomes of recordPhase1, in order. */
  readonly branchChanges: BranchChange[][] = [];
  readonly phase1Outcomes: Phase1Outcome[] = [];
  /** Called before each compare-and-set: lets a test move the row under the engine's feet. */
  beforeApply: ((gid: string) => void) | null = null;
  /** Every compare-and-set that won, whole (attention, events). */
  readonly changes: TxChange[] = [];
  /** Lets a test refuse a write as Postgres would (an error with a SQLSTATE `code`): returns the error, or null to write. */
  refuse: ((change: TxChange | Phase1Outcome) => Error | null) | null = null;

  /** Every transaction inserted, as the engine asked. */
  readonly inserts: NewTransaction[] = [];

  insert(input: NewTransaction, leaseMs: number): Promise<LoadedTx | null> {
    if (this.txs.has(input.gid)) return Promise.resolve(null);
    this.inserts.push(input);
    const now = new Date();
    const loaded: LoadedTx = {
      tx: {
        gid: input.gid, mode: input.mode, status: input.status ?? 'active', reason: null, oneShot: input.oneShot, concurrent: input.concurrent,
        requestHash: input.requestHash, metadata: input.metadata, timeoutMs: input.timeoutMs, deadline: new Date(now.getTime() + input.timeoutMs),
        version: 1, attempts: 0, needsAttention: false, nextAttemptAt: now, leaseOwner: input.leaseOwner,
        leaseUntil: input.leaseOwner ? new Date(now.getTime() + leaseMs) : null, traceParent: input.traceParent, check: input.check ?? null,
        workflow: input.workflow ?? null, input: input.input ?? null, result: null,
        ownerKeyDigest: input.ownerKeyDigest ?? null, createdAt: now, updatedAt: now,
      },
      branches: input.branches.map((b, i) => ({ ...this.branch(input.gid, b, i + 1), status: input.branchStatus ?? 'pending' })),
    };
    this.txs.set(input.gid, loaded);
    this.writes.push(`insert ${input.gid}`);
    return Promise.resolve(structuredClone(loaded));
  }

  apply(gid: string, expectedVersion: number, change: TxChange): Promise<AppliedChange | null> {
    this.applyAttempts.push(`${gid} -> ${change.status}`);
    const refused = this.refuse?.(change);
    if (refused) return Promise.reject(refused);
    this.beforeApply?.(gid);
    const current = this.txs.get(gid);
    if (!current || current.tx.version !== expectedVersion) return Promise.resolve(null);
    const now = Date.now();
    current.tx = {
      ...current.tx, status: change.status, reason: change.reason, version: current.tx.version + 1,
      attempts: change.attempts ?? current.tx.attempts, leaseOwner: change.lease?.owner ?? null,
      leaseUntil: change.lease ? new Date(now + change.lease.ms) : null,
      nextAttemptAt: change.nextAttemptInMs === null ? null : new Date(now + change.nextAttemptInMs),
      needsAttention: current.tx.needsAttention || (change.needsAttention ?? false),
      result: change.result === undefined ? current.tx.result : change.result,
    };
    const changed: BranchRecord[] = [];
    for (const c of change.branches) {
      const b = current.branches.find((x) => x.branchId === c.branchId);
      if (!b) continue;
      Object.assign(b, {
        status: c.status === undefined || (c.ifPending && b.status !== 'pending') ? b.status : c.status,
        attempts: b.attempts + c.calls,
        waitingSince: c.waiting === undefined ? b.waitingSince : c.waiting ? (b.waitingSince ?? new Date(now)) : null,
        ...(c.result === undefined ? {} : { result: c.result }),
        ...(c.lastError === undefined ? {} : { lastError: c.lastError }),
      });
      changed.push({ ...b });
    }
    this.writes.push(`apply ${gid} -> ${change.status}`);
    this.branchChanges.push(change.branches);
    this.changes.push(change);
    return Promise.resolve({ tx: { ...current.tx }, branches: changed });
  }

  /** How long each inserted branch put off its transaction's next look (null: not at all). */
  readonly branchLooks: (number | null)[] = [];

  insertBranch(
    gid: string,
    branch: NewBranch,
    _events: EventInput[],
    _maxBranches?: number,
    nextAttemptInMs: number | null = null,
    answers: readonly BranchAnswer[] = [],
  ): Promise<BranchRecord | null> {
    const current = this.txs.get(gid);
    if (!current || current.tx.status !== 'active' || current.branches.some((b) => b.branchId === branch.branchId)) return Promise.resolve(null);
    // The answers of earlier steps, written with this one as the phase1 write does it.
    for (const answer of answers) {
      const b = current.branches.find((x) => x.branchId === answer.branchId);
      if (!b) continue;
      if (b.status === 'pending') b.status = answer.status;
      b.attempts++;
      if (answer.result !== undefined) b.result = answer.result;
      if (answer.lastError !== undefined) b.lastError = answer.lastError;
    }
    const record = { ...this.branch(gid, branch, current.branches.length + 1), status: branch.status ?? 'pending', result: branch.result ?? null };
    current.branches.push(record);
    current.tx.version++;
    this.writes.push(`branch ${gid}/${branch.branchId}${answers.length ? ` (with ${answers.map((a) => `${a.branchId} -> ${a.status}`).join(', ')})` : ''}`);
    this.branchLooks.push(nextAttemptInMs);
    return Promise.resolve({ ...record });
  }

  recordPhase1(gid: string, branchId: string, status: BranchRecord['status'], outcome: Phase1Outcome): Promise<BranchRecord | null> {
    const b = this.txs.get(gid)?.branches.find((x) => x.branchId === branchId);
    if (!b) return Promise.resolve(null);
    const refused = this.refuse?.(outcome);
    if (refused) return Promise.reject(refused);
    this.phase1Outcomes.push(outcome);
    if (b.status === 'pending') b.status = status;
    b.attempts++;
    if (outcome.waiting !== undefined) b.waitingSince = outcome.waiting ? (b.waitingSince ?? new Date()) : null;
    const tx = this.txs.get(gid)!.tx;
    const leased = tx.leaseOwner !== null && tx.leaseUntil !== null && tx.leaseUntil.getTime() > Date.now();
    if (outcome.askAgainInMs !== undefined && tx.status === 'active' && !leased) {
      const due = Math.min(tx.nextAttemptAt?.getTime() ?? Infinity, tx.deadline.getTime(), Date.now() + outcome.askAgainInMs);
      tx.nextAttemptAt = new Date(due);
    }
    this.writes.push(`phase1 ${gid}/${branchId} -> ${b.status}`);
    return Promise.resolve({ ...b });
  }

  /** Reads of each gid so far. */
  readonly loads = new Map<string, number>();

  load(gid: string): Promise<LoadedTx | null> {
    this.loads.set(gid, (this.loads.get(gid) ?? 0) + 1);
    const current = this.txs.get(gid);
    return Promise.resolve(current ? structuredClone(current) : null);
  }

  loadForAdd(gid: string, branchId: string): Promise<TxForAdd | null> {
    const current = this.txs.get(gid);
    if (!current) return Promise.resolve(null);
    const existing = current.branches.find((b) => b.branchId === branchId);
    return Promise.resolve({
      tx: structuredClone(current.tx),
      branches: current.branches.map((b) => ({ branchId: b.branchId, status: b.status, ...(b.kind ? { kind: b.kind } : {}), ...(b.waitingSince ? { waitingSince: b.waitingSince } : {}) })),
      existing: existing ? structuredClone(existing) : null,
    });
  }

  private branch(gid: string, b: NewBranch, seq: number): BranchRecord {
    const now = new Date();
    return { gid, branchId: b.branchId, seq, participant: b.participant, action: b.action, payload: b.payload, dependsOn: b.dependsOn ?? [],
      kind: b.kind ?? null, compensate: b.compensate ?? null, status: 'pending', waitingSince: null, attempts: 0, lastError: null, result: null, createdAt: now, updatedAt: now };
  }
}

/** Participants that answer from a script, and remember every call in order. */
class FakeParticipants {
  readonly calls: string[] = [];
  /** Every call's body, in order. */
  readonly bodies: PhaseCallBody[] = [];
  answers: Record<string, CallOutcome> = {};

  /** How long looking a participant up takes (a cache miss reads Postgres): where a pause can fall. */
  findDelayMs = 0;

  /** The API key digest that owns each participant name; a name not here is owned by none. */
  readonly owners = new Map<string, Buffer>();

  async find(name: string): Promise<RegisteredParticipant | null> {
    if (this.findDelayMs > 0) await new Promise((r) => setTimeout(r, this.findDelayMs));
    const ownerKeyDigest = this.owners.get(name) ?? null;
    return Promise.resolve({ name, transport: 'http', endpoint: `http://127.0.0.1:1/${name}`, host: null, port: null, actions: [], ownerKeyDigest } as unknown as RegisteredParticipant);
  }

  resolve(name: string): Promise<RegisteredParticipant | null> {
    return this.find(name);
  }

  /** The time each call was given, in order. */
  readonly timeouts: number[] = [];

  /** Answers given once each, in order, before `answers` (for a call answered ongoing, then finally). */
  readonly queued: Record<string, CallOutcome[]> = {};

  call(participant: RegisteredParticipant, body: PhaseCallBody, timeoutMs: number): Promise<CallOutcome> {
    const key = `${participant.name} ${body.phase}`;
    this.calls.push(key);
    this.bodies.push(body);
    this.timeouts.push(timeoutMs);
    return Promise.resolve(this.queued[key]?.shift() ?? this.answers[key] ?? { kind: 'ok', result: {} });
  }
}

/**
 * The database's clock as the engine reads it. By default it agrees with this machine's; a
 * test of skew gives one measured against a "database" whose time differs from Date.now().
 */
/** An engine on a fake store; `shared`: on another engine's store and participants (a second instance, or one restarted). */
function engineWith(env: Record<string, string> = {}, clock: DatabaseTime = new DatabaseTime(), shared?: { store: FakeStore; participants: FakeParticipants }) {
  const store = shared?.store ?? new FakeStore();
  const participants = shared?.participants ?? new FakeParticipants();
  const config = new CoordinatorConfig(loadCoordinatorEnv({ INSTANCE_ID: 'test-instance', ...env }));
  const gates = new ParticipantGates(config);
  const metrics = new MetricsService({} as DataSource, gates);
  const bus = new InProcessTxEventBus();
  const writer = new TransactionWriter(store as unknown as TransactionStore, bus, config, metrics);
  const caller = new BranchCaller(participants as unknown as ParticipantsService, participants as unknown as ParticipantInvoker, config, metrics, gates, clock);
  const resolver = participants as unknown as ParticipantsService;
  const modes = new ModeRegistry();
  modes.register('tcc', new TccProcessor(resolver, config, clock));
  modes.register('2pc', new TwoPhaseCommitProcessor(resolver, config, clock));
  modes.register('saga', new SagaProcessor(resolver, config));
  modes.register('msg', new MsgProcessor(resolver, config, clock));
  modes.register('workflow', new WorkflowProcessor(resolver, config));
  const round = new TransactionRound(writer, caller, clock, metrics);
  const engine = new TransactionEngine(writer, round, modes, resolver, gates, bus, config, clock, new DependencyOutages());
  return { engine, store, participants };
}

const oneShot = (gid: string, over: Partial<NewTransaction> = {}): NewTransaction => ({
  gid, mode: 'tcc', oneShot: true, concurrent: false, requestHash: 'h', metadata: {}, timeoutMs: 60_000, firstAttemptInMs: 60_000,
  leaseOwner: 'test-instance', traceParent: null, events: [],
  branches: [
    { branchId: 'b1', participant: 'bank-a', action: 'debit', payload: {} },
    { branchId: 'b2', participant: 'bank-b', action: 'credit', payload: {} },
  ],
  ...over,
});

describe('TransactionEngine', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('one-shot: every try, then the durable decision, then every confirm, then the terminal write', async () => {
    const { engine, store, participants } = engineWith();
    const { created, loaded } = await engine.create(oneShot('os-1'), true);
    expect(created).toBe(true);
    expect(loaded.tx.status).toBe('committed');
    expect(participants.calls.slice(0, 2).sort()).toEqual(['bank-a try', 'bank-b try']);
    expect(participants.calls.slice(2).sort()).toEqual(['bank-a confirm', 'bank-b confirm']);
    expect(store.writes).toEqual(['insert os-1', 'apply os-1 -> committing', 'apply os-1 -> committed']);
  });

  it('one-shot: a refused try rolls back, and cancel reaches every branch', async () => {
    const { engine, participants } = engineWith();
    participants.answers['bank-b try'] = { kind: 'failed', error: { message: 'insufficient funds' } };
    const { loaded } = await engine.create(oneShot('os-2'), true);
    expect(loaded.tx).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    expect(participants.calls.filter((c) => c.endsWith('cancel')).sort()).toEqual(['bank-a cancel', 'bank-b cancel']);
    expect(participants.calls.some((c) => c.endsWith('confirm'))).toBe(false);
  });

  it('the same gid again creates nothing and calls nobody', async () => {
    const { engine, participants } = engineWith();
    await engine.create(oneShot('os-3'), true);
    const calls = participants.calls.length;
    const again = await engine.create(oneShot('os-3'), true);
    expect(again.created).toBe(false);
    expect(participants.calls).toHaveLength(calls);
  });

  it('interactive: a branch is called once however often it is added; commit decides and delivers', async () => {
    const { engine, store, participants } = engineWith();
    await engine.create(oneShot('it-1', { oneShot: false, branches: [], leaseOwner: null }), false);
    const branch = { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} };
    expect((await engine.addBranch('it-1', branch)).status).toBe('prepared');
    expect((await engine.addBranch('it-1', branch)).status).toBe('prepared');
    expect(participants.calls).toEqual(['bank-a try']);
    const { loaded, cannotCommit } = await engine.decide('it-1', { type: 'commit_requested' }, true);
    expect(cannotCommit).toBe(false);
    expect(loaded.tx.status).toBe('committed');
    expect(participants.calls).toEqual(['bank-a try', 'bank-a confirm']);
    expect(store.writes.indexOf('apply it-1 -> committing')).toBeLessThan(store.writes.indexOf('apply it-1 -> committed'));
  });

  it('a decision whose compare-and-set lost reads again and decides on what it finds', async () => {
    const { engine, store, participants } = engineWith();
    await engine.create(oneShot('race-1', { oneShot: false, branches: [], leaseOwner: null }), false);
    await engine.addBranch('race-1', { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} });
    // Another writer (a branch added elsewhere, a timeout) bumps the version once, right before our write.
    let moved = false;
    store.beforeApply = (gid) => {
      if (moved) return;
      moved = true;
      store.txs.get(gid)!.tx.version++;
    };
    const { loaded } = await engine.decide('race-1', { type: 'commit_requested' }, false);
    expect(loaded.tx.status).toBe('committing');
    // The first compare-and-set lost; the second, on a fresh read, won.
    expect(store.applyAttempts.filter((a) => a === 'race-1 -> committing')).toHaveLength(2);
    expect(store.writes.filter((w) => w === 'apply race-1 -> committing')).toHaveLength(1);
    expect(participants.calls[0]).toBe('bank-a try');
  });

  it('commit of a transaction with a failed branch rolls it back and says so', async () => {
    const { engine, participants } = engineWith();
    participants.answers['bank-a try'] = { kind: 'failed', error: 'no' };
    await engine.create(oneShot('cc-1', { oneShot: false, branches: [], leaseOwner: null }), false);
    expect((await engine.addBranch('cc-1', { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} })).status).toBe('failed');
    const { loaded, cannotCommit } = await engine.decide('cc-1', { type: 'commit_requested' }, true);
    expect(cannotCommit).toBe(true);
    expect(loaded.tx).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
  });

  it('refuses the branch past MAX_BRANCHES_PER_TRANSACTION, calling no one, and still answers a recorded one', async () => {
    const { engine, participants } = engineWith({ MAX_BRANCHES_PER_TRANSACTION: '2' });
    await engine.create(oneShot('lim-1', { oneShot: false, branches: [], leaseOwner: null }), false);
    for (const id of ['x', 'y']) await engine.addBranch('lim-1', { branchId: id, participant: 'bank-a', action: 'debit', payload: {} });
    await expect(engine.addBranch('lim-1', { branchId: 'z', participant: 'bank-a', action: 'debit', payload: {} })).rejects.toMatchObject({
      constructor: TooManyBranchesError,
      limit: 2,
    });
    expect((await engine.addBranch('lim-1', { branchId: 'y', participant: 'bank-a', action: 'debit', payload: {} })).status).toBe('prepared');
    expect(participants.calls).toEqual(['bank-a try', 'bank-a try']);
  });

  it('hides a transaction from a client key that did not begin it, and shows it to its own and to an unscoped caller', async () => {
    const { engine, participants } = engineWith();
    const owner = Buffer.alloc(32, 1);
    const other = Buffer.alloc(32, 2);
    await engine.create(oneShot('own-1', { oneShot: false, branches: [], leaseOwner: null, ownerKeyDigest: owner }), false);
    const branch = { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} };
    await expect(engine.get('own-1', other)).rejects.toBeInstanceOf(TransactionNotFoundError);
    await expect(engine.addBranch('own-1', branch, other)).rejects.toBeInstanceOf(TransactionNotFoundError);
    await expect(engine.decide('own-1', { type: 'rollback_requested', reason: 'client' }, false, other)).rejects.toBeInstanceOf(TransactionNotFoundError);
    expect(participants.calls).toEqual([]);
    expect((await engine.addBranch('own-1', branch, owner)).status).toBe('prepared');
    expect((await engine.get('own-1', null)).tx.status).toBe('active');
    expect((await engine.decide('own-1', { type: 'rollback_requested', reason: 'client' }, false, owner)).loaded.tx.status).toBe('rolling_back');
  });

  it('refuses what the state machine refuses, and an unknown gid', async () => {
    const { engine } = engineWith();
    await engine.create(oneShot('ref-1'), true);
    await expect(engine.decide('ref-1', { type: 'rollback_requested', reason: 'client' }, false)).rejects.toMatchObject({
      constructor: TransactionRefusedError,
      code: 'TX_ALREADY_DECIDED',
    });
    await expect(engine.addBranch('ref-1', { branchId: 'late', participant: 'bank-a', action: 'debit', payload: {} })).rejects.toBeInstanceOf(
      TransactionRefusedError,
    );
    await expect(engine.decide('nobody', { type: 'commit_requested' }, false)).rejects.toBeInstanceOf(TransactionNotFoundError);
  });

  it('sends nothing for a transaction whose lease it no longer holds', async () => {
    const { engine, participants } = engineWith();
    // Created by another instance: this one holds no lease, so it must not drive phase 1.
    const { loaded } = await engine.create(oneShot('lease-1', { leaseOwner: 'other-instance' }), false);
    expect(loaded.tx.status).toBe('active');
    expect(participants.calls).toEqual([]);
  });
});

describe('TransactionEngine: AT locks', () => {
  beforeAll(() => Logger.overrideLogger(false));

  const locks = { count: 2, rows: [{ table: 'public.accounts', key: '["a"]' }, { table: 'public.accounts', key: '["b"]' }] };
  const at2pc = (gid: string, over: Partial<NewTransaction> = {}) =>
    oneShot(gid, {
      mode: '2pc',
      branches: [
        { branchId: 'b1', participant: 'bank-a', action: 'at-debit', payload: {} },
        { branchId: 'b2', participant: 'bank-b', action: 'credit', payload: {} },
      ],
      ...over,
    });

  it('one-shot: the locks a prepare reported go in the decision write with its answer, and nowhere else', async () => {
    const { engine, store, participants } = engineWith();
    participants.answers['bank-a prepare'] = { kind: 'ok', result: { ok: true }, locks };
    await engine.create(at2pc('at-1'), true);
    expect(store.writes).toEqual(['insert at-1', 'apply at-1 -> committing', 'apply at-1 -> committed']);
    const [decision, finish] = store.branchChanges;
    expect(decision.find((c) => c.branchId === 'b1')).toMatchObject({ status: 'prepared', result: { ok: true }, locks });
    // The other branch reported none: its row keeps null.
    expect(decision.find((c) => c.branchId === 'b2')).not.toHaveProperty('locks');
    expect(finish.every((c) => !('locks' in c))).toBe(true);
  });

  it('interactive: the locks go in the write of the phase-1 answer', async () => {
    const { engine, store, participants } = engineWith();
    participants.answers['bank-a prepare'] = { kind: 'ok', result: {}, locks };
    await engine.create(at2pc('at-2', { oneShot: false, branches: [], leaseOwner: null }), false);
    await engine.addBranch('at-2', { branchId: 'x', participant: 'bank-a', action: 'at-debit', payload: {} });
    await engine.addBranch('at-2', { branchId: 'y', participant: 'bank-b', action: 'credit', payload: {} });
    expect(store.writes).toEqual(['insert at-2', 'branch at-2/x', 'phase1 at-2/x -> prepared', 'branch at-2/y', 'phase1 at-2/y -> prepared']);
    expect(store.phase1Outcomes).toEqual([{ result: {}, locks }, { result: {} }]);
  });

  it('records no locks from a prepare that locked no row, nor from a refusal', async () => {
    const { engine, store, participants } = engineWith();
    participants.answers['bank-a prepare'] = { kind: 'ok', result: {}, locks: { count: 0, rows: [] } };
    participants.answers['bank-b prepare'] = { kind: 'failed', error: { reason: 'insufficient_funds' } };
    await engine.create(at2pc('at-3', { oneShot: false, branches: [], leaseOwner: null }), false);
    await engine.addBranch('at-3', { branchId: 'x', participant: 'bank-a', action: 'at-debit', payload: {} });
    await engine.addBranch('at-3', { branchId: 'y', participant: 'bank-b', action: 'at-credit', payload: {} });
    expect(store.phase1Outcomes).toEqual([{ result: {} }, { lastError: { reason: 'insufficient_funds' } }]);
  });
});

describe('TransactionEngine: msg', () => {
  beforeAll(() => Logger.overrideLogger(false));

  const message = (gid: string, over: Partial<NewTransaction> = {}): NewTransaction =>
    oneShot(gid, {
      mode: 'msg', oneShot: false, leaseOwner: null, branchStatus: 'prepared', check: { participant: 'order', action: 'dtx-msg-check' },
      branches: [
        { branchId: 'b1', participant: 'inventory', action: 'reserve', payload: {} },
        { branchId: 'b2', participant: 'events', action: 'order.created', payload: {} },
      ],
      ...over,
    });

  /** The message as recovery claims it once its deadline has passed. */
  async function claimedPastDeadline(store: FakeStore, gid: string): Promise<LoadedTx> {
    store.txs.get(gid)!.tx.deadline = new Date(Date.now() - 1);
    const loaded = await store.load(gid);
    return { ...loaded!, heldUntil: performance.now() + 60_000 };
  }

  it('prepared: calls nobody until the commit, then delivers execute to every branch', async () => {
    const { engine, store, participants } = engineWith();
    const { loaded } = await engine.create(message('m-1'), false);
    expect(loaded.tx.status).toBe('active');
    expect(loaded.branches.map((b) => b.status)).toEqual(['prepared', 'prepared']);
    expect(participants.calls).toEqual([]);
    const { loaded: done } = await engine.decide('m-1', { type: 'commit_requested' }, true);
    expect(done.tx.status).toBe('committed');
    expect(participants.calls.sort()).toEqual(['events execute', 'inventory execute']);
    expect(store.writes).toEqual(['insert m-1', 'apply m-1 -> committing', 'apply m-1 -> committed']);
  });

  it('rolled back by its caller: ends rolled back and calls nobody, not even the check', async () => {
    const { engine, participants } = engineWith();
    await engine.create(message('m-2'), false);
    const { loaded } = await engine.decide('m-2', { type: 'rollback_requested', reason: 'client' }, true);
    expect(loaded.tx).toMatchObject({ status: 'rolled_back', reason: 'client' });
    expect(loaded.branches.map((b) => b.status)).toEqual(['rolled_back', 'rolled_back']);
    expect(participants.calls).toEqual([]);
  });

  it('at its deadline, a check answered 2xx commits it and delivers', async () => {
    const { engine, store, participants } = engineWith();
    await engine.create(message('m-3'), false);
    await engine.resume(await claimedPastDeadline(store, 'm-3'));
    expect(participants.calls[0]).toBe('order check');
    expect(participants.calls.slice(1).sort()).toEqual(['events execute', 'inventory execute']);
    expect((await store.load('m-3'))!.tx.status).toBe('committed');
  });

  it('at its deadline, a check answered 409 rolls it back (reason timeout) with no execute', async () => {
    const { engine, store, participants } = engineWith();
    participants.answers['order check'] = { kind: 'failed', error: { reason: 'not_committed' } };
    await engine.create(message('m-4'), false);
    await engine.resume(await claimedPastDeadline(store, 'm-4'));
    expect(participants.calls).toEqual(['order check']);
    expect((await store.load('m-4'))!.tx).toMatchObject({ status: 'rolled_back', reason: 'timeout' });
  });

  it('at its deadline, a check with no answer leaves it active and asks again later, never guessing', async () => {
    const { engine, store, participants } = engineWith();
    participants.answers['order check'] = { kind: 'transient', error: 'HTTP 503' };
    await engine.create(message('m-5'), false);
    await engine.resume(await claimedPastDeadline(store, 'm-5'));
    const after = (await store.load('m-5'))!;
    expect(after.tx).toMatchObject({ status: 'active', attempts: 1, leaseOwner: null });
    expect(participants.calls).toEqual(['order check']);
    delete participants.answers['order check'];
    await engine.resume(await claimedPastDeadline(store, 'm-5'));
    expect((await store.load('m-5'))!.tx.status).toBe('committed');
  });

  it('submitted at begin: starts committing and is delivered without a commit call', async () => {
    const { engine, store, participants } = engineWith();
    const { loaded } = await engine.create(message('m-6', { oneShot: true, status: 'committing', leaseOwner: 'test-instance' }), true);
    expect(loaded.tx.status).toBe('committed');
    expect(participants.calls.sort()).toEqual(['events execute', 'inventory execute']);
    expect(store.writes).toEqual(['insert m-6', 'apply m-6 -> committed']);
  });

  it('refuses an added branch: a message names its branches at begin', async () => {
    const { engine } = engineWith();
    await engine.create(message('m-7'), false);
    await expect(engine.addBranch('m-7', { branchId: 'late', participant: 'bank-a', action: 'debit', payload: {} })).rejects.toMatchObject({
      code: 'WRONG_MODE',
    });
  });

  describe('answers that cannot be stored as they are', () => {
    const NUL = String.fromCharCode(0);
    const LONE = String.fromCharCode(0xd800);
    const saga = (gid: string): NewTransaction =>
      oneShot(gid, { mode: 'saga', branches: [{ branchId: 's1', participant: 'shop', action: 'order', payload: {}, dependsOn: [] }] });
    const marker = { error: 'UNSTORABLE_ANSWER', message: expect.stringContaining('it was not kept') as unknown };

    it('a 2xx with NUL in its result: the step ran once, the saga commits, the result is a marker and the transaction is flagged', async () => {
      const { engine, store, participants } = engineWith();
      participants.answers['shop execute'] = { kind: 'ok', result: { note: `a${NUL}b` } };
      const { loaded } = await engine.create(saga('nul-1'), true);
      expect(loaded.tx.status).toBe('committed');
      expect(participants.calls).toEqual(['shop execute']);
      const step = store.changes[0];
      expect(step.branches[0].result).toEqual(marker);
      expect(step.needsAttention).toBe(true);
      expect(step.events).toContainEqual({ type: 'attention', branchId: 's1', detail: { unstorableAnswer: true } });
    });

    it('a 409 body and a transient error text keep their meaning, with U+FFFD for what cannot be stored', async () => {
      const { engine, store, participants } = engineWith();
      participants.answers['bank-a try'] = { kind: 'failed', error: { message: `no${LONE}`, [`k${NUL}`]: 1 } };
      participants.answers['bank-b try'] = { kind: 'transient', error: `down${NUL}` };
      const { loaded } = await engine.create(oneShot('err-1'), true);
      expect(loaded.tx).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
      const errors = Object.fromEntries(store.branchChanges[0].map((b) => [b.branchId, b.lastError]));
      expect(errors).toEqual({ b1: { message: 'no\ufffd', 'k\ufffd': 1 }, b2: 'down\ufffd' });
      // Recorded as the participant meant it: no flag for a refusal.
      expect(store.changes[0].needsAttention ?? false).toBe(false);
    });

    it('interactive: a prepared branch whose result cannot be stored is recorded as a marker, flagged', async () => {
      const { engine, store, participants } = engineWith();
      participants.answers['bank-a try'] = { kind: 'ok', result: [`x${LONE}`] };
      await engine.create(oneShot('it-nul', { oneShot: false, branches: [], leaseOwner: null }), false);
      const branch = await engine.addBranch('it-nul', { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} });
      expect(branch.status).toBe('prepared');
      expect(store.phase1Outcomes).toEqual([{ result: marker, needsAttention: true }]);
    });

    it('any other refusal of the data: the write goes through once more without the answers, and the step is not run again', async () => {
      const { engine, store, participants } = engineWith();
      participants.answers['shop execute'] = { kind: 'ok', result: { fine: 'to us, not to the database' } };
      // Postgres refusing what the checks let through (22P05: untranslatable character), once per write that carries it.
      store.refuse = (change) => {
        const results = 'branches' in change ? change.branches.map((b) => b.result) : [change.result];
        return results.some((r) => JSON.stringify(r ?? null).includes('to us')) ? Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' }) : null;
      };
      const { loaded } = await engine.create(saga('refused-1'), true);
      expect(loaded.tx.status).toBe('committed');
      expect(participants.calls).toEqual(['shop execute']);
      expect(store.changes[0].branches[0].result).toEqual({ error: 'UNSTORABLE_ANSWER', message: expect.stringContaining('refused by the database') as unknown });
      expect(store.changes[0].needsAttention).toBe(true);

      // A refusal that is not about data (a bug, a lost connection) is not papered over.
      store.refuse = () => Object.assign(new Error('relation does not exist'), { code: '42P01' });
      await expect(engine.create(saga('refused-2'), true)).rejects.toThrow('relation does not exist');
    });
  });
});

describe('TransactionEngine: stored times are compared in the database time, not this machine\'s clock', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => vi.useRealTimers());

  /** A clock measured against a database that agrees with the machine now; the machine's clock is then moved by `skewMs`. */
  function skewedAfterMeasuring(skewMs: number): DatabaseTime {
    const clock = new DatabaseTime();
    const at = performance.now();
    expect(clock.observe({ databaseMs: Date.now(), sentAt: at, receivedAt: at })).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + skewMs);
    return clock;
  }

  const claimed = async (store: FakeStore, gid: string): Promise<LoadedTx> => ({ ...(await store.load(gid))!, heldUntil: performance.now() + 60_000 });

  /** A prepared message left to its check-back, with one branch. */
  const checkBackMessage = (gid: string): NewTransaction =>
    oneShot(gid, {
      mode: 'msg', oneShot: false, leaseOwner: null, branchStatus: 'prepared', check: { participant: 'order', action: 'dtx-msg-check' },
      branches: [{ branchId: 'b1', participant: 'inventory', action: 'reserve', payload: {} }],
    });

  /** A clock measured against a database that agrees with this machine, which is left as it is. */
  function measuredClock(databaseMs = Date.now()): DatabaseTime {
    const clock = new DatabaseTime();
    const at = performance.now();
    clock.observe({ databaseMs, sentAt: at, receivedAt: at });
    return clock;
  }

  it('a saga retried by an instance whose clock is 30 s ahead is retried, not rolled back as timed out before its deadline', async () => {
    const clock = new DatabaseTime();
    const { engine, store, participants } = engineWith({}, clock);
    const at = performance.now();
    clock.observe({ databaseMs: Date.now(), sentAt: at, receivedAt: at });
    participants.answers['shop execute'] = { kind: 'transient', error: 'HTTP 503' };
    const saga = oneShot('skew-saga', { mode: 'saga', timeoutMs: 10_000, branches: [{ branchId: 's1', participant: 'shop', action: 'order', payload: {}, dependsOn: [] }] });
    await engine.create(saga, false);
    await vi.waitFor(() => expect(store.changes).toHaveLength(1));
    expect(store.txs.get('skew-saga')!.tx.status).toBe('active');

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 30_000);
    delete participants.answers['shop execute'];
    await engine.resume(await claimed(store, 'skew-saga'));
    expect(participants.calls).toEqual(['shop execute', 'shop execute']);
    expect((await store.load('skew-saga'))!.tx.status).toBe('committed');
  });

  it('a saga past its deadline in the database time is rolled back as timed out, though this machine\'s clock is 30 s behind', async () => {
    const clock = skewedAfterMeasuring(-30_000);
    const { engine, store, participants } = engineWith({}, clock);
    participants.answers['shop execute'] = { kind: 'transient', error: 'HTTP 503' };
    const saga = oneShot('late-saga', { mode: 'saga', timeoutMs: 10_000, branches: [{ branchId: 's1', participant: 'shop', action: 'order', payload: {}, dependsOn: [] }] });
    await engine.create(saga, false);
    await vi.waitFor(() => expect(store.changes).toHaveLength(1));
    store.txs.get('late-saga')!.tx.deadline = new Date(clock.now() - 1);
    await engine.resume(await claimed(store, 'late-saga'));
    expect((await store.load('late-saga'))!.tx).toMatchObject({ status: 'rolled_back', reason: 'timeout' });
    // Not run again: compensated (its first try may have done its work before the 503).
    expect(participants.calls).toEqual(['shop execute', 'shop compensate']);
  });

  it('a message claimed at its deadline is checked at once by an instance whose clock is 30 s behind', async () => {
    const clock = skewedAfterMeasuring(-30_000);
    const { engine, store, participants } = engineWith({}, clock);
    const msg = checkBackMessage('skew-msg');
    await engine.create(msg, false);
    store.txs.get('skew-msg')!.tx.deadline = new Date(clock.now() - 1);
    await engine.resume(await claimed(store, 'skew-msg'));
    expect(participants.calls).toEqual(['order check', 'inventory execute']);
    expect((await store.load('skew-msg'))!.tx.status).toBe('committed');
  });

  it('a message claimed by recovery is judged by the claim\'s own now(), even with this instance\'s reading of the database clock off', async () => {
    // A reading 30 s behind the database (as if mis-sampled): the claim's now() decides, not the reading.
    const clock = measuredClock(Date.now() - 30_000);
    const { engine, store, participants } = engineWith({}, clock);
    const msg = checkBackMessage('claimed-msg');
    await engine.create(msg, false);
    const deadline = store.txs.get('claimed-msg')!.tx.deadline;
    await engine.resume({ ...(await claimed(store, 'claimed-msg')), claimedAt: new Date(deadline.getTime() + 1) });
    expect(participants.calls).toEqual(['order check', 'inventory execute']);
  });

  it('a message resumed before its deadline (not by a claim) asks nobody and falls due again at the deadline, not a lease later', async () => {
    const clock = skewedAfterMeasuring(+30_000);
    const { engine, store, participants } = engineWith({}, clock);
    const msg = checkBackMessage('early-msg');
    await engine.create(msg, false);
    store.txs.get('early-msg')!.tx.deadline = new Date(clock.now() + 2_000);
    await engine.resume(await claimed(store, 'early-msg'));
    expect(participants.calls).toEqual([]);
    const write = store.changes.at(-1)!;
    expect(write).toMatchObject({ status: 'active', lease: null, events: [] });
    expect(write.nextAttemptInMs).toBeGreaterThan(1_900);
    expect(write.nextAttemptInMs).toBeLessThanOrEqual(2_000);
  });

  /** A message past its deadline, due for its check-back, on an engine with 1 s calls and 3 s leases. */
  async function dueMessage(gid: string) {
    const clock = measuredClock();
    const setup = engineWith({ CALL_TIMEOUT_MS: '1000', LEASE_MS: '3000' }, clock);
    await setup.engine.create(checkBackMessage(gid), false);
    setup.store.txs.get(gid)!.tx.deadline = new Date(clock.now() - 1);
    return setup;
  }

  it('sends no call when its lease ran out between the lease check and the call (a pause at an await in between)', async () => {
    const { engine, store, participants } = await dueMessage('paused-msg');
    // A call's time and 30 ms more of lease are left when callAll checks; the lookup then takes 1.1 s.
    participants.findDelayMs = 1_100;
    const loaded = { ...(await store.load('paused-msg'))!, heldUntil: performance.now() + 1_030 };
    await expect(engine.resume(loaded)).rejects.toThrow(LeaseLostError);
    expect(participants.calls).toEqual([]);
  });

  it('a call made after a stall since the lease check gets only what is left of the lease, not a whole call timeout', async () => {
    const { engine, store, participants } = await dueMessage('stalled-msg');
    participants.findDelayMs = 300;
    const heldUntil = performance.now() + 1_030;
    await engine.resume({ ...(await store.load('stalled-msg'))!, heldUntil });
    expect(participants.calls[0]).toBe('order check');
    // Given at most what was left of the lease after the 300 ms stall (about 730 ms), so it is over before the lease is.
    expect(participants.timeouts[0]).toBeLessThanOrEqual(735);
    expect(participants.timeouts[0]).toBeGreaterThan(500);
  });

  it('sends no call once the lease has less than a call\'s time left on the monotonic clock, whatever the wall clock says', async () => {
    const { engine, store, participants } = await dueMessage('lease-msg');
    // Stepped back 20 s, as after a pause: a wall-clock lease would look fresh again.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 20_000);
    const loaded = { ...(await store.load('lease-msg'))!, heldUntil: performance.now() + 500 };
    await expect(engine.resume(loaded)).rejects.toThrow(LeaseLostError);
    expect(participants.calls).toEqual([]);
  });
});

/** The fake store with the operator's "retry now" statement, under TransactionStore.makeDue's rules. */
class RetryableStore extends FakeStore {
  makeDue(gid: string): Promise<MadeDue> {
    const current = this.txs.get(gid);
    const retryable = !!current && current.tx.nextAttemptAt !== null && (['committing', 'rolling_back'].includes(current.tx.status) || ['saga', 'workflow'].includes(current.tx.mode));
    if (!current || !retryable) return Promise.resolve({ outcome: 'not_retryable' });
    if (current.tx.leaseOwner !== null && current.tx.leaseUntil !== null && current.tx.leaseUntil.getTime() > Date.now()) return Promise.resolve({ outcome: 'leased' });
    current.tx = { ...current.tx, nextAttemptAt: new Date(), leaseOwner: null, leaseUntil: null, version: current.tx.version + 1 };
    this.writes.push(`makeDue ${gid}`);
    return Promise.resolve({ outcome: 'due', status: current.tx.status });
  }
}

describe('TransactionEngine.retryNow (an operator\'s retry, through TransactionWriter.makeDue)', () => {
  beforeAll(() => Logger.overrideLogger(false));

  /** The engine with only what retryNow uses: the real writer on the fake store, and the bus it tells. */
  function retryEngine() {
    const store = new RetryableStore();
    const config = new CoordinatorConfig(loadCoordinatorEnv({ INSTANCE_ID: 'test-instance' }));
    const metrics = new MetricsService({} as DataSource, new ParticipantGates(config));
    const bus = new InProcessTxEventBus();
    const told: BusMessage[] = [];
    bus.subscribe((message) => told.push(message));
    const writer = new TransactionWriter(store as unknown as TransactionStore, bus, config, metrics);
    const unused = {} as never;
    const engine = new TransactionEngine(writer, unused, unused, unused, unused, bus, config, unused, new DependencyOutages());
    return { engine, store, told };
  }

  /** A decided transaction: committing, its phase 2 due later, under `lease` (null: none). */
  async function committing(store: RetryableStore, gid: string, lease: { owner: string; untilMs: number } | null) {
    await store.insert(oneShot(gid, { leaseOwner: null }), 0);
    const row = store.txs.get(gid)!;
    row.tx = {
      ...row.tx,
      status: 'committing',
      nextAttemptAt: new Date(Date.now() + 60_000),
      leaseOwner: lease?.owner ?? null,
      leaseUntil: lease ? new Date(Date.now() + lease.untilMs) : null,
    };
    return row.tx.version;
  }

  it('makes a decided transaction due now through the writer, which tells the bus; answers the transaction as read before', async () => {
    const { engine, store, told } = retryEngine();
    const version = await committing(store, 'retry-due', { owner: 'gone-instance', untilMs: -1_000 });
    const { outcome, loaded } = await engine.retryNow('retry-due');
    expect(outcome).toBe('due');
    expect(loaded.tx).toMatchObject({ gid: 'retry-due', status: 'committing', version });
    expect(store.writes).toContain('makeDue retry-due');
    expect(store.txs.get('retry-due')!.tx).toMatchObject({ version: version + 1, leaseOwner: null });
    expect(told).toEqual([{ kind: 'tx', gid: 'retry-due', status: 'committing' }]);
  });

  it('leaves a transaction under a live lease to its holder: no write, nothing on the bus', async () => {
    const { engine, store, told } = retryEngine();
    const version = await committing(store, 'retry-leased', { owner: 'other-instance', untilMs: 30_000 });
    expect((await engine.retryNow('retry-leased')).outcome).toBe('leased');
    expect(store.writes).not.toContain('makeDue retry-leased');
    expect(store.txs.get('retry-leased')!.tx).toMatchObject({ version, leaseOwner: 'other-instance' });
    expect(told).toEqual([]);
  });

  it('finds nothing to retry in a finished transaction, and refuses an unknown gid before any write', async () => {
    const { engine, store, told } = retryEngine();
    await committing(store, 'retry-done', null);
    store.txs.get('retry-done')!.tx.status = 'committed';
    store.txs.get('retry-done')!.tx.nextAttemptAt = null;
    const done = await engine.retryNow('retry-done');
    expect(done.outcome).toBe('not_retryable');
    expect(done.loaded.tx.status).toBe('committed');
    await expect(engine.retryNow('retry-nobody')).rejects.toThrow(TransactionNotFoundError);
    expect(store.writes.filter((w) => w.startsWith('makeDue'))).toEqual([]);
    expect(told).toEqual([]);
  });
});

describe('TransactionEngine: workflow (PROTOCOL.md 3.7)', () => {
  beforeAll(() => Logger.overrideLogger(false));

  const RESUME_MS = 2_000;
  const withWorkflows = () => engineWith({ WORKFLOW_RESUME_MS: String(RESUME_MS) });
  const beginWorkflow = (engine: TransactionEngine, gid: string, timeoutMs = 60_000) =>
    engine.begin(
      { mode: 'workflow', gid, gidChosen: true, timeoutMs, metadata: {}, requestHash: 'h', traceParent: null, ownerKeyDigest: null,
        workflow: { participant: 'orders', name: 'flow' }, input: { n: 1 } },
      false,
    );
  const tccStep = (stepId: string, participant = 'bank', action = 'debit') => ({ stepId, kind: 'tcc' as const, participant, action, payload: { step: stepId } });

  /** The workflow as recovery claims it: under this instance's lease, past its deadline if asked. */
  async function claimed(store: FakeStore, gid: string, pastDeadline = false): Promise<LoadedTx> {
    if (pastDeadline) store.txs.get(gid)!.tx.deadline = new Date(Date.now() - 1);
    const loaded = await store.load(gid);
    return { ...loaded!, heldUntil: performance.now() + 60_000 };
  }

  it('begins active with no branch, first looked at after the resume interval, never past its deadline', async () => {
    const { engine, store, participants } = withWorkflows();
    const { loaded } = await beginWorkflow(engine, 'wf-begin');
    expect(loaded.tx).toMatchObject({ status: 'active', workflow: { participant: 'orders', name: 'flow' }, input: { n: 1 } });
    expect(loaded.branches).toEqual([]);
    await beginWorkflow(engine, 'wf-short', 1_000);
    expect(store.inserts.map((i) => i.firstAttemptInMs)).toEqual([RESUME_MS, 1_000]);
    expect(participants.calls).toEqual([]);
  });

  it('a branch step is recorded (putting off the resume), then its phase 1 called once, in its kind\'s mode; the same stepId again calls no one', async () => {
    const { engine, store, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-steps');
    expect(await engine.recordStep('wf-steps', tccStep('1'))).toMatchObject({ status: 'prepared', kind: 'tcc' });
    expect(await engine.recordStep('wf-steps', { stepId: '2', kind: '2pc', participant: 'bank', action: 'debit', payload: {} })).toMatchObject({ status: 'prepared' });
    expect(await engine.recordStep('wf-steps', { stepId: '3', kind: 'saga', participant: 'shop', action: 'ship', payload: {} })).toMatchObject({ status: 'committed' });
    expect((await engine.recordStep('wf-steps', tccStep('1'))).status).toBe('prepared');
    expect(participants.bodies.map((b) => `${b.branchId} ${b.mode} ${b.phase}`)).toEqual(['1 tcc try', '2 2pc prepare', '3 saga execute']);
    expect(participants.bodies[0].payload).toEqual({ step: '1' });
    expect(store.branchLooks).toEqual([RESUME_MS, RESUME_MS, RESUME_MS]);
  });

  it('a local step is recorded committed with its result and its compensation, calling no one', async () => {
    const { engine, store, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-local');
    const step = await engine.recordStep('wf-local', { stepId: 'inv', kind: 'local', result: 'INV-7', compensate: { participant: 'bank', action: 'refund', payload: {} } });
    expect(step).toMatchObject({ status: 'committed', kind: 'local', result: 'INV-7', participant: 'orders', action: 'flow', compensate: { participant: 'bank', action: 'refund' } });
    expect(participants.calls).toEqual([]);
    expect(store.writes).toEqual(['insert wf-local', 'branch wf-local/inv']);
  });

  it('the same stepId as another step is STEP_MISMATCH, and calls no one', async () => {
    const { engine, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-mismatch');
    await engine.recordStep('wf-mismatch', tccStep('1'));
    await engine.recordStep('wf-mismatch', { stepId: '2', kind: 'local', result: 1, compensate: null });
    for (const again of [
      { ...tccStep('1'), kind: 'saga' as const },
      tccStep('1', 'shop'),
      tccStep('1', 'bank', 'credit'),
      { stepId: '1', kind: 'local' as const, result: null, compensate: null },
      tccStep('2', 'orders', 'flow'),
    ]) {
      await expect(engine.recordStep('wf-mismatch', again)).rejects.toMatchObject({ constructor: TransactionRefusedError, code: 'STEP_MISMATCH' });
    }
    // A local step is matched by its kind alone: a replay's result may differ, the record's is answered.
    expect((await engine.recordStep('wf-mismatch', { stepId: '2', kind: 'local', result: 2, compensate: null })).result).toBe(1);
    expect(participants.calls).toEqual(['bank try']);
  });

  it('refuses a step on another mode, a branch on a workflow, a step once decided, and one past MAX_BRANCHES_PER_TRANSACTION', async () => {
    const { engine, participants } = engineWith({ MAX_BRANCHES_PER_TRANSACTION: '1' });
    await engine.create(oneShot('tcc-1', { oneShot: false, branches: [], leaseOwner: null }), false);
    await expect(engine.recordStep('tcc-1', tccStep('1'))).rejects.toMatchObject({ constructor: TransactionRefusedError, code: 'WRONG_MODE' });
    await beginWorkflow(engine, 'wf-ref');
    await expect(engine.addBranch('wf-ref', { branchId: 'b', participant: 'bank', action: 'debit', payload: {} })).rejects.toMatchObject({ code: 'WRONG_MODE' });
    await engine.recordStep('wf-ref', tccStep('1'));
    await expect(engine.recordStep('wf-ref', tccStep('2'))).rejects.toBeInstanceOf(TooManyBranchesError);
    await engine.decide('wf-ref', { type: 'rollback_requested', reason: 'client' }, true);
    await expect(engine.recordStep('wf-ref', { stepId: '3', kind: 'local', result: null, compensate: null })).rejects.toMatchObject({ code: 'TX_NOT_ACTIVE' });
    // A step recorded before is still answered from the record.
    expect((await engine.recordStep('wf-ref', tccStep('1'))).branchId).toBe('1');
    expect(participants.calls).toEqual(['bank try', 'bank cancel']);
  });

  it('a failed step leaves it active; a commit then rolls back (CANNOT_COMMIT), undoing the steps newest first, one at a time', async () => {
    const { engine, participants } = withWorkflows();
    participants.answers['card try'] = { kind: 'failed', error: { reason: 'declined' } };
    await beginWorkflow(engine, 'wf-fail');
    await engine.recordStep('wf-fail', tccStep('1'));
    await engine.recordStep('wf-fail', { stepId: '2', kind: 'local', result: 'x', compensate: { participant: 'ledger', action: 'unbook', payload: {} } });
    await engine.recordStep('wf-fail', { stepId: '3', kind: 'saga', participant: 'shop', action: 'ship', payload: {} });
    await engine.recordStep('wf-fail', { stepId: '4', kind: 'local', result: 'y', compensate: null });
    expect((await engine.recordStep('wf-fail', tccStep('5', 'card'))).status).toBe('failed');
    expect((await engine.get('wf-fail')).tx.status).toBe('active');
    const { loaded, cannotCommit } = await engine.decide('wf-fail', { type: 'commit_requested' }, true, null, { never: 'kept' });
    expect(cannotCommit).toBe(true);
    expect(loaded.tx).toMatchObject({ status: 'rolled_back', reason: 'branch_failed', result: null });
    expect(participants.calls).toEqual(['bank try', 'shop execute', 'card try', 'card cancel', 'shop compensate', 'ledger compensate', 'bank cancel']);
    // A local step's compensation is a saga action's compensate, its payload the one recorded.
    expect(participants.bodies.find((b) => b.phase === 'compensate' && b.action === 'unbook')).toMatchObject({ branchId: '2', mode: 'saga' });
  });

  it('a commit keeps its result and confirms / commits the tcc and 2pc steps only', async () => {
    const { engine, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-commit');
    await engine.recordStep('wf-commit', tccStep('1'));
    await engine.recordStep('wf-commit', { stepId: '2', kind: 'saga', participant: 'shop', action: 'ship', payload: {} });
    await engine.recordStep('wf-commit', { stepId: '3', kind: '2pc', participant: 'card', action: 'charge', payload: {} });
    await engine.recordStep('wf-commit', { stepId: '4', kind: 'local', result: 1, compensate: { participant: 'ledger', action: 'unbook', payload: {} } });
    const { loaded } = await engine.decide('wf-commit', { type: 'commit_requested' }, true, null, { orderId: 'o-1' });
    expect(loaded.tx).toMatchObject({ status: 'committed', result: { orderId: 'o-1' } });
    expect(participants.calls.slice(3).sort()).toEqual(['bank confirm', 'card commit']);
    // The same commit again is answered as decided: its result stays the first one's.
    expect((await engine.decide('wf-commit', { type: 'commit_requested' }, false, null, { other: true })).loaded.tx.result).toEqual({ orderId: 'o-1' });
  });

  it('refuses a result on the commit of another mode, before deciding anything', async () => {
    const { engine, store } = engineWith();
    await engine.create(oneShot('tcc-r', { oneShot: false, branches: [], leaseOwner: null }), false);
    await expect(engine.decide('tcc-r', { type: 'commit_requested' }, false, null, 1)).rejects.toMatchObject({ constructor: InvalidRequestError, field: 'result' });
    expect((await store.load('tcc-r'))!.tx.status).toBe('active');
  });

  it('resume: a quiet workflow claimed by recovery has its host called, with its input, in mode workflow; looked at again after the interval', async () => {
    const { engine, store, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-resume');
    await engine.recordStep('wf-resume', tccStep('1'));
    await engine.resume(await claimed(store, 'wf-resume'));
    expect(participants.bodies.at(-1)).toEqual({ gid: 'wf-resume', branchId: 'resume', mode: 'workflow', action: 'flow', phase: 'resume', payload: { n: 1 } });
    expect(participants.calls).toEqual(['bank try', 'orders resume']);
    const written = store.changes.at(-1)!;
    // The step's answer, held since it was given to the host, rides with the resume's write.
    expect(written).toMatchObject({ status: 'active', lease: null, attempts: 0, branches: [{ branchId: '1', status: 'prepared', ifPending: true, calls: 1 }] });
    expect(written.nextAttemptInMs).toBeGreaterThan(RESUME_MS - 50);
    expect(written.nextAttemptInMs).toBeLessThanOrEqual(RESUME_MS);
  });

  it('writes a step\'s answer with the next write of its workflow: n steps and a commit are n + 3 writes, not 2n + 3', async () => {
    const { engine, store, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-held');
    expect(await engine.recordStep('wf-held', tccStep('1'))).toMatchObject({ status: 'prepared', attempts: 1 });
    // Held: the store still has it pending, this instance reads it answered.
    expect((await store.load('wf-held'))!.branches[0].status).toBe('pending');
    expect((await engine.get('wf-held')).branches[0]).toMatchObject({ status: 'prepared', attempts: 1 });
    expect(await engine.recordStep('wf-held', tccStep('1'))).toMatchObject({ status: 'prepared' });
    await engine.recordStep('wf-held', tccStep('2'));
    await engine.decide('wf-held', { type: 'commit_requested' }, true);
    expect(store.writes.filter((w) => !w.startsWith('load'))).toEqual([
      'insert wf-held',
      'branch wf-held/1',
      'branch wf-held/2 (with 1 -> prepared)',
      expect.stringMatching(/^apply wf-held .*committing/),
      expect.stringMatching(/^apply wf-held .*committed/),
    ]);
    expect(store.branchChanges[0]).toEqual([{ branchId: '2', status: 'prepared', ifPending: true, calls: 1, result: {} }]);
    expect(participants.calls).toEqual(['bank try', 'bank try', 'bank confirm', 'bank confirm']);
  });

  it('a held answer rides on one write only: two steps recorded at once after it carry it once, its call counted once', async () => {
    const { engine, store } = withWorkflows();
    await beginWorkflow(engine, 'wf-once');
    await engine.recordStep('wf-once', tccStep('1'));
    await Promise.all([engine.recordStep('wf-once', tccStep('2')), engine.recordStep('wf-once', tccStep('3'))]);
    expect(store.writes.filter((w) => w.startsWith('branch wf-once/') && w.includes('1 -> prepared'))).toHaveLength(1);
    expect((await store.load('wf-once'))!.branches[0]).toMatchObject({ branchId: '1', status: 'prepared', attempts: 1 });
  });

  it('writes a held answer on its own when no other write of the workflow comes within WORKFLOW_ANSWER_HOLD_MS; 0 writes it at once', async () => {
    const { engine, store } = engineWith({ WORKFLOW_ANSWER_HOLD_MS: '30' });
    await beginWorkflow(engine, 'wf-alone');
    await engine.recordStep('wf-alone', tccStep('1'));
    expect(store.writes.at(-1)).toBe('branch wf-alone/1');
    await vi.waitFor(() => expect(store.writes.at(-1)).toBe('phase1 wf-alone/1 -> prepared'), { timeout: 1_000, interval: 10 });
    const atOnce = engineWith({ WORKFLOW_ANSWER_HOLD_MS: '0' });
    await beginWorkflow(atOnce.engine, 'wf-now');
    await atOnce.engine.recordStep('wf-now', tccStep('1'));
    expect(atOnce.store.writes.slice(-2)).toEqual(['branch wf-now/1', 'phase1 wf-now/1 -> prepared']);
  });

  it('an answer a crash lost is asked again: the step sent again by its host, or a commit finding it never answered, calls its participant again', async () => {
    const { engine, store, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-lost');
    await engine.recordStep('wf-lost', tccStep('1'));
    await engine.recordStep('wf-lost', tccStep('2'));
    // Another instance on the same log (or this one restarted): it holds none of those answers.
    const restarted = engineWith({ WORKFLOW_RESUME_MS: String(RESUME_MS) }, undefined, { store, participants }).engine;
    expect((await store.load('wf-lost'))!.branches.map((b) => [b.branchId, b.status, b.attempts])).toEqual([['1', 'prepared', 1], ['2', 'pending', 0]]);
    participants.calls.length = 0;
    const { loaded } = await restarted.decide('wf-lost', { type: 'commit_requested' }, true);
    expect(loaded.tx.status).toBe('committed');
    expect(participants.calls).toEqual(['bank try', 'bank confirm', 'bank confirm']);

    // The host replays the step whose answer was lost: asked again once, then answered from the record.
    await beginWorkflow(engine, 'wf-replayed');
    await engine.recordStep('wf-replayed', tccStep('1'));
    participants.calls.length = 0;
    expect(await restarted.recordStep('wf-replayed', tccStep('1'))).toMatchObject({ status: 'prepared', attempts: 1 });
    expect(await restarted.recordStep('wf-replayed', tccStep('1'))).toMatchObject({ status: 'prepared' });
    expect(participants.calls).toEqual(['bank try']);
  });

  it('a step that answered, then lost, is not asked again: a timed-out or refused step is not "never answered"', async () => {
    const { engine, participants } = withWorkflows();
    participants.answers['bank try'] = { kind: 'failed', error: { reason: 'no funds' } };
    await beginWorkflow(engine, 'wf-refused');
    expect(await engine.recordStep('wf-refused', tccStep('1'))).toMatchObject({ status: 'failed' });
    const { loaded, cannotCommit } = await engine.decide('wf-refused', { type: 'commit_requested' }, true);
    expect(cannotCommit).toBe(true);
    expect(loaded.tx.status).toBe('rolled_back');
    expect(participants.calls.filter((c) => c === 'bank try')).toHaveLength(1);
  });

  it('resume: a host that does not take it is asked again with backoff and, refusing (409), flagged for attention', async () => {
    const { engine, store, participants } = withWorkflows();
    participants.answers['orders resume'] = { kind: 'failed', error: { reason: 'step_mismatch' } };
    await beginWorkflow(engine, 'wf-refuse');
    await engine.resume(await claimed(store, 'wf-refuse'));
    expect(store.changes.at(-1)).toMatchObject({ status: 'active', attempts: 1, needsAttention: true, lease: null });
    expect((await store.load('wf-refuse'))!.tx.needsAttention).toBe(true);
  });

  it('a step answered long-running (202): recorded pending and waiting, asked again before any resume, then prepared; the resume an interval later', async () => {
    const { engine, store, participants } = withWorkflows();
    participants.queued['bank try'] = [{ kind: 'ongoing', retryAfterMs: 500 }];
    await beginWorkflow(engine, 'wf-wait');
    const step = await engine.recordStep('wf-wait', tccStep('1'));
    expect(step).toMatchObject({ status: 'pending' });
    expect(step.waitingSince).not.toBeNull();
    expect(store.phase1Outcomes.at(-1)).toEqual({ waiting: true, askAgainInMs: 500 });
    // The same stepId again (the host's replay) calls no one: it is still waiting.
    expect((await engine.recordStep('wf-wait', tccStep('1'))).status).toBe('pending');
    expect(participants.calls).toEqual(['bank try']);
    // A step recorded meanwhile (steps run side by side) leaves the look at the waiting step's time.
    await engine.recordStep('wf-wait', { stepId: '2', kind: 'local', result: 'x', compensate: null });
    expect(store.branchLooks).toEqual([RESUME_MS, null]);

    // Recovery claims it when the step is due: the step is asked again, not the host resumed.
    await engine.resume(await claimed(store, 'wf-wait'));
    expect(participants.calls).toEqual(['bank try', 'bank try']);
    const after = (await store.load('wf-wait'))!;
    expect(after.branches[0]).toMatchObject({ status: 'prepared', waitingSince: null });
    const written = store.changes.at(-1)!;
    expect(written).toMatchObject({ status: 'active', lease: null });
    expect(written.nextAttemptInMs).toBeGreaterThan(RESUME_MS - 50);
    expect(written.nextAttemptInMs).toBeLessThanOrEqual(RESUME_MS);

    // Claimed again, with nothing waiting: now the host is resumed.
    await engine.resume(await claimed(store, 'wf-wait'));
    expect(participants.calls).toEqual(['bank try', 'bank try', 'orders resume']);
  });

  it('at its deadline: rolled back (timeout) without a resume, its steps undone newest first', async () => {
    const { engine, store, participants } = withWorkflows();
    await beginWorkflow(engine, 'wf-deadline');
    await engine.recordStep('wf-deadline', tccStep('1'));
    await engine.recordStep('wf-deadline', { stepId: '2', kind: 'saga', participant: 'shop', action: 'ship', payload: {} });
    await engine.resume(await claimed(store, 'wf-deadline', true));
    expect((await store.load('wf-deadline'))!.tx).toMatchObject({ status: 'rolled_back', reason: 'timeout' });
    expect(participants.calls).toEqual(['bank try', 'shop execute', 'shop compensate', 'bank cancel']);
  });
});

describe('TransactionEngine: long-running answers (PROTOCOL.md 3.6)', () => {
  beforeAll(() => Logger.overrideLogger(false));

  const ongoing = (retryAfterMs?: number): CallOutcome => (retryAfterMs === undefined ? { kind: 'ongoing' } : { kind: 'ongoing', retryAfterMs });

  /** The transaction as recovery claims it: read from the store, under this instance's lease. */
  const claimed = async (store: FakeStore, gid: string): Promise<LoadedTx> => ({ ...(await store.load(gid))!, heldUntil: performance.now() + 60_000 });

  it('one-shot: a branch answering ongoing holds the decision; due at its retryAfterMs; only it is asked again, then the decision', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['bank-b try'] = [ongoing(2_000)];
    const { loaded } = await engine.create(oneShot('lr-1'), false);
    expect(loaded.tx.status).toBe('active');
    expect(loaded.branches.map((b) => [b.branchId, b.status, b.waitingSince !== null])).toEqual([['b1', 'prepared', false], ['b2', 'pending', true]]);
    const write = store.changes.at(-1)!;
    expect(write).toMatchObject({ status: 'active', lease: null, nextAttemptInMs: 2_000, attempts: 0 });
    expect(write.needsAttention ?? false).toBe(false);

    await engine.resume(await claimed(store, 'lr-1'));
    expect(participants.calls.slice(0, 2).sort()).toEqual(['bank-a try', 'bank-b try']);
    expect(participants.calls[2]).toBe('bank-b try');
    expect(participants.calls.slice(3).sort()).toEqual(['bank-a confirm', 'bank-b confirm']);
    const done = (await store.load('lr-1'))!;
    expect(done.tx).toMatchObject({ status: 'committed', needsAttention: false });
    expect(done.branches.every((b) => b.waitingSince === null)).toBe(true);
  });

  it('one-shot: ongoing, then refused: rolled back, cancel to every branch', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['bank-b try'] = [ongoing(), { kind: 'failed', error: { reason: 'declined' } }];
    await engine.create(oneShot('lr-2'), false);
    await engine.resume(await claimed(store, 'lr-2'));
    expect((await store.load('lr-2'))!.tx).toMatchObject({ status: 'rolled_back', reason: 'branch_failed' });
    expect(participants.calls.filter((c) => c.endsWith('cancel')).sort()).toEqual(['bank-a cancel', 'bank-b cancel']);
  });

  it('interactive: the branch stays pending and waiting, the transaction due when it is asked again, which prepares it; then due at the deadline', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['bank-a try'] = [ongoing(1_500)];
    await engine.create(oneShot('lr-3', { oneShot: false, branches: [], leaseOwner: null }), false);
    const added = await engine.addBranch('lr-3', { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} });
    expect(added.status).toBe('pending');
    expect(added.waitingSince).not.toBeNull();
    expect(store.phase1Outcomes).toEqual([{ waiting: true, askAgainInMs: 1_500 }]);
    // Asked once more when the same branchId is sent again? No: the recorded outcome.
    expect((await engine.addBranch('lr-3', { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} })).status).toBe('pending');
    expect(participants.calls).toEqual(['bank-a try']);

    await engine.resume(await claimed(store, 'lr-3'));
    expect(participants.calls).toEqual(['bank-a try', 'bank-a try']);
    const after = (await store.load('lr-3'))!;
    expect(after.tx.status).toBe('active');
    expect(after.branches[0]).toMatchObject({ status: 'prepared', waitingSince: null });
    // Nothing left to ask: due again at its deadline, the lease let go.
    expect(store.changes.at(-1)).toMatchObject({ lease: null, events: [] });
    expect(store.changes.at(-1)!.nextAttemptInMs).toBeGreaterThan(50_000);
    expect((await engine.decide('lr-3', { type: 'commit_requested' }, true)).loaded.tx.status).toBe('committed');
  });

  it('phase 2 answered ongoing again and again: not delivered, asked again, never flagged, no attempt counted', async () => {
    const { engine, store, participants } = engineWith({ ATTENTION_AFTER_ATTEMPTS: '2' });
    participants.queued['bank-a confirm'] = [ongoing(), ongoing(), ongoing(), ongoing()];
    await engine.create(oneShot('lr-4'), false);
    expect((await store.load('lr-4'))!.tx.status).toBe('committing');
    for (let i = 0; i < 4; i++) await engine.resume(await claimed(store, 'lr-4'));
    const done = (await store.load('lr-4'))!;
    expect(done.tx).toMatchObject({ status: 'committed', needsAttention: false });
    expect(participants.calls.filter((c) => c === 'bank-a confirm')).toHaveLength(5);
    expect(store.changes.every((c) => !c.needsAttention && (c.attempts ?? 0) === 0)).toBe(true);
  });
});

describe('TransactionEngine.reportOutcome (PROTOCOL.md 3.6)', () => {
  beforeAll(() => Logger.overrideLogger(false));

  /** A one-shot whose b2 answered its try ongoing (b1 prepared): active, waiting for b2. */
  async function waitingOneShot(gid: string, over: Partial<NewTransaction> = {}) {
    const setup = engineWith();
    setup.participants.queued['bank-b try'] = [{ kind: 'ongoing', retryAfterMs: 60_000 }];
    await setup.engine.create(oneShot(gid, over), false);
    return setup;
  }

  it('ok: the branch prepared at once, with the result, the decision made and phase 2 delivered, no repeat of the call', async () => {
    const { engine, store, participants } = await waitingOneShot('rep-1');
    const saved = await engine.reportOutcome('rep-1', 'b2', { phase: 'try', outcome: 'ok', result: { approvedBy: 'ann' } });
    expect(saved.tx.status).toBe('committing');
    expect(saved.branches.find((b) => b.branchId === 'b2')).toMatchObject({ status: 'prepared', result: { approvedBy: 'ann' }, waitingSince: null, attempts: 1 });
    await vi.waitFor(() => expect(store.txs.get('rep-1')!.tx.status).toBe('committed'));
    expect(participants.calls.filter((c) => c.endsWith('try'))).toEqual(['bank-a try', 'bank-b try']);
    const reported = store.changes.find((c) => c.events.some((e) => e.type === 'outcome_reported'))!;
    expect(reported.events[0]).toMatchObject({ type: 'outcome_reported', branchId: 'b2', from: 'pending', to: 'prepared', detail: { phase: 'try', outcome: 'ok' } });
  });

  it('failed: the effect of a 409: rolled back (branch_failed), cancel to every branch, the body kept as lastError', async () => {
    const { engine, store, participants } = await waitingOneShot('rep-2');
    const saved = await engine.reportOutcome('rep-2', 'b2', { phase: 'try', outcome: 'failed', result: { reason: 'declined' } });
    expect(saved.tx).toMatchObject({ status: 'rolling_back', reason: 'branch_failed' });
    expect(saved.branches.find((b) => b.branchId === 'b2')).toMatchObject({ status: 'failed', lastError: { reason: 'declined' } });
    await vi.waitFor(() => expect(store.txs.get('rep-2')!.tx.status).toBe('rolled_back'));
    expect(participants.calls.filter((c) => c.endsWith('cancel')).sort()).toEqual(['bank-a cancel', 'bank-b cancel']);
  });

  it('once: a repeat answers the transaction as it is and writes nothing; a phase not in progress is PHASE_NOT_IN_PROGRESS', async () => {
    const { engine, store } = await waitingOneShot('rep-3');
    await engine.reportOutcome('rep-3', 'b2', { phase: 'try', outcome: 'ok', result: null });
    await vi.waitFor(() => expect(store.txs.get('rep-3')!.tx.status).toBe('committed'));
    const writes = store.writes.length;
    // b2 shows its try's ok (committed, only a success leads there) and its confirm delivered: reports of either are repeats.
    await expect(engine.reportOutcome('rep-3', 'b2', { phase: 'try', outcome: 'ok', result: null })).resolves.toMatchObject({ tx: { status: 'committed' } });
    await expect(engine.reportOutcome('rep-3', 'b2', { phase: 'confirm', outcome: 'ok', result: null })).resolves.toMatchObject({ tx: { status: 'committed' } });
    // Any other outcome is of a phase not in progress.
    await expect(engine.reportOutcome('rep-3', 'b2', { phase: 'try', outcome: 'failed', result: null })).rejects.toMatchObject({
      constructor: TransactionRefusedError,
      code: 'PHASE_NOT_IN_PROGRESS',
    });
    await expect(engine.reportOutcome('rep-3', 'b2', { phase: 'cancel', outcome: 'ok', result: null })).rejects.toMatchObject({ code: 'PHASE_NOT_IN_PROGRESS' });
    expect(store.writes).toHaveLength(writes);
  });

  it('a repeat while the phase is settled as reported answers 200-like (the transaction); the other outcome is not in progress', async () => {
    const { engine, store } = await waitingOneShot('rep-4', { branches: [{ branchId: 'b2', participant: 'bank-b', action: 'credit', payload: {} }, { branchId: 'b3', participant: 'bank-c', action: 'credit', payload: {} }] });
    // b3 answered ok; b2 waits. A report of b3's try (already ok) is a repeat; its failure is not in progress.
    const writes = store.writes.length;
    await expect(engine.reportOutcome('rep-4', 'b3', { phase: 'try', outcome: 'ok', result: null })).resolves.toMatchObject({ tx: { status: 'active' } });
    await expect(engine.reportOutcome('rep-4', 'b3', { phase: 'try', outcome: 'failed', result: null })).rejects.toMatchObject({ code: 'PHASE_NOT_IN_PROGRESS' });
    await expect(engine.reportOutcome('rep-4', 'b2', { phase: 'confirm', outcome: 'ok', result: null })).rejects.toMatchObject({ code: 'PHASE_NOT_IN_PROGRESS' });
    expect(store.writes).toHaveLength(writes);
  });

  it('a phase 1 never sent is not in progress; unknown branch and gid are refused as such', async () => {
    const { engine, store } = engineWith();
    await engine.create(oneShot('rep-5', { oneShot: false, branches: [], leaseOwner: null }), false);
    await store.insertBranch('rep-5', { branchId: 'x', participant: 'bank-a', action: 'debit', payload: {} }, []);
    await expect(engine.reportOutcome('rep-5', 'x', { phase: 'try', outcome: 'ok', result: null })).rejects.toMatchObject({ code: 'PHASE_NOT_IN_PROGRESS' });
    await expect(engine.reportOutcome('rep-5', 'nobody', { phase: 'try', outcome: 'ok', result: null })).rejects.toBeInstanceOf(BranchNotFoundError);
    await expect(engine.reportOutcome('no-such-gid', 'x', { phase: 'try', outcome: 'ok', result: null })).rejects.toBeInstanceOf(TransactionNotFoundError);
  });

  it('only the key that owns the participant name reports (a name nobody owns: any key); a refusal writes nothing', async () => {
    const { engine, store, participants } = await waitingOneShot('rep-6');
    const owner = Buffer.alloc(32, 7);
    const other = Buffer.alloc(32, 8);
    participants.owners.set('bank-b', owner);
    const writes = store.writes.length;
    await expect(engine.reportOutcome('rep-6', 'b2', { phase: 'try', outcome: 'ok', result: null }, other)).rejects.toBeInstanceOf(NotParticipantOwnerError);
    expect(store.writes).toHaveLength(writes);
    expect((await engine.reportOutcome('rep-6', 'b2', { phase: 'try', outcome: 'ok', result: null }, owner)).tx.status).toBe('committing');
    participants.owners.delete('bank-a');
    // bank-a is owned by no key: any key's report of its phase is taken (here a repeat of its try's ok).
    await expect(engine.reportOutcome('rep-6', 'b1', { phase: 'try', outcome: 'ok', result: null }, other)).resolves.toBeDefined();
  });

  it('leaves the others still waiting their time: a report that settles one of two waiting branches keeps the due time, the second decides', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['bank-a try'] = [{ kind: 'ongoing', retryAfterMs: 30_000 }];
    participants.queued['bank-b try'] = [{ kind: 'ongoing', retryAfterMs: 30_000 }];
    await engine.create(oneShot('rep-7'), false);
    const due = store.txs.get('rep-7')!.tx.nextAttemptAt!.getTime();
    const first = await engine.reportOutcome('rep-7', 'b1', { phase: 'try', outcome: 'ok', result: null });
    expect(first.tx).toMatchObject({ status: 'active', leaseOwner: null });
    expect(Math.abs(first.tx.nextAttemptAt!.getTime() - due)).toBeLessThan(1_000);
    expect(participants.calls).toEqual(['bank-a try', 'bank-b try']);
    const second = await engine.reportOutcome('rep-7', 'b2', { phase: 'try', outcome: 'ok', result: null });
    expect(second.tx.status).toBe('committing');
    await vi.waitFor(() => expect(store.txs.get('rep-7')!.tx.status).toBe('committed'));
  });

  it('phase 2: a confirm answered ongoing, reported ok: delivered, and the transaction ends', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['bank-b confirm'] = [{ kind: 'ongoing', retryAfterMs: 60_000 }];
    await engine.create(oneShot('rep-8'), false);
    await vi.waitFor(() => expect(store.txs.get('rep-8')!.branches[1].waitingSince).not.toBeNull());
    expect(store.txs.get('rep-8')!.tx).toMatchObject({ status: 'committing', leaseOwner: null });
    const saved = await engine.reportOutcome('rep-8', 'b2', { phase: 'confirm', outcome: 'ok', result: null });
    expect(saved.tx.status).toBe('committed');
    expect(participants.calls.filter((c) => c === 'bank-b confirm')).toHaveLength(1);
  });

  it('saga: a step reported done goes on to the next step at once', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['shop execute'] = [{ kind: 'ongoing', retryAfterMs: 60_000 }];
    const steps = [
      { branchId: 's1', participant: 'shop', action: 'order', payload: {}, dependsOn: [] },
      { branchId: 's2', participant: 'ship', action: 'send', payload: {}, dependsOn: ['s1'] },
    ];
    await engine.create(oneShot('rep-saga', { mode: 'saga', branches: steps }), false);
    await vi.waitFor(() => expect(store.txs.get('rep-saga')!.branches[0].waitingSince).not.toBeNull());
    expect(participants.calls).toEqual(['shop execute']);
    const saved = await engine.reportOutcome('rep-saga', 's1', { phase: 'execute', outcome: 'ok', result: { order: 1 } });
    expect(saved.branches[0]).toMatchObject({ status: 'committed', result: { order: 1 } });
    await vi.waitFor(() => expect(store.txs.get('rep-saga')!.tx.status).toBe('committed'));
    expect(participants.calls).toEqual(['shop execute', 'ship execute']);
  });

  it('msg: its check-back (branch `check`) reported committed delivers the message; a report before the deadline is not in progress', async () => {
    const { engine, store, participants } = engineWith();
    participants.queued['order check'] = [{ kind: 'ongoing', retryAfterMs: 60_000 }];
    const message = oneShot('rep-msg', {
      mode: 'msg', oneShot: false, leaseOwner: null, branchStatus: 'prepared', check: { participant: 'order', action: 'dtx-msg-check' },
      branches: [{ branchId: 'b1', participant: 'inventory', action: 'reserve', payload: {} }],
    });
    await engine.create(message, false);
    await expect(engine.reportOutcome('rep-msg', 'check', { phase: 'check', outcome: 'ok', result: null })).rejects.toMatchObject({ code: 'PHASE_NOT_IN_PROGRESS' });
    store.txs.get('rep-msg')!.tx.deadline = new Date(Date.now() - 1);
    await engine.resume({ ...(await store.load('rep-msg'))!, heldUntil: performance.now() + 60_000 });
    expect(participants.calls).toEqual(['order check']);
    expect(store.txs.get('rep-msg')!.tx).toMatchObject({ status: 'active', attempts: 0, leaseOwner: null });
    const saved = await engine.reportOutcome('rep-msg', 'check', { phase: 'check', outcome: 'ok', result: null });
    expect(saved.tx.status).toBe('committing');
    await vi.waitFor(() => expect(store.txs.get('rep-msg')!.tx.status).toBe('committed'));
    expect(participants.calls).toEqual(['order check', 'inventory execute']);
    // Once: the same report again is a repeat.
    await expect(engine.reportOutcome('rep-msg', 'check', { phase: 'check', outcome: 'ok', result: null })).resolves.toMatchObject({ tx: { status: 'committed' } });
  });

  it('waits while another instance holds a live lease (it is calling), then applies the report', async () => {
    const { engine, store } = await waitingOneShot('rep-9');
    const row = store.txs.get('rep-9')!;
    row.tx = { ...row.tx, leaseOwner: 'other-instance', leaseUntil: new Date(Date.now() + 60_000) };
    const readsBefore = store.loads.get('rep-9') ?? 0;
    const writes = store.writes.length;
    const reporting = engine.reportOutcome('rep-9', 'b2', { phase: 'try', outcome: 'ok', result: null });
    // It reads the transaction again and again while the lease lives, and writes nothing.
    await vi.waitFor(() => expect(store.loads.get('rep-9')).toBeGreaterThanOrEqual(readsBefore + 3));
    expect(store.writes).toHaveLength(writes);
    // The other instance lets it go (its own write: a new version).
    row.tx = { ...row.tx, leaseOwner: null, leaseUntil: null, version: row.tx.version + 1 };
    const saved = await reporting;
    expect(saved.tx.status).toBe('committing');
    expect(saved.branches[1]).toMatchObject({ status: 'prepared' });
  });
});
