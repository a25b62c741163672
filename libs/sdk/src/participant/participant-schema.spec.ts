import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';
import { DtxSchemaError, type SchemaNeeds } from '../data-layers/core/schema.js';
import { AtBranches } from './at-branches.js';
import { BranchBarrier } from './barrier.js';
import { BranchDispatcher } from './branch-dispatcher.js';
import { MSG_CHECK_ACTION, type ParticipantExplorer, type RegisteredAction } from './participant.explorer.js';
import type { ParticipantModuleOptions } from './participant.options.js';
import { ParticipantSchema, SCHEMA_RECHECK_MS } from './participant-schema.js';
import { PreparedTransactions } from './prepared-transactions.js';

const MISSING = 'table dtx_barrier is missing in database shop: add ...dtxMigrations to the DataSource’s migrations and run them';

/** A data layer whose schema check answers `gap` (or throws it), and whose phases throw `phaseError` when set. */
class SchemaLayer implements DtxDataLayer {
  readonly description = 'the fake layer';
  gap: string | null | Error = MISSING;
  phaseError: Error | null = null;
  readonly asked: SchemaNeeds[] = [];

  checkSchema(needs: SchemaNeeds): Promise<string | null> {
    this.asked.push(needs);
    return this.gap instanceof Error ? Promise.reject(this.gap) : Promise.resolve(this.gap);
  }

  runPhase(): Promise<BarrierOutcome> {
    return this.phaseError ? Promise.reject(this.phaseError) : Promise.resolve({ kind: 'ok', result: null, duplicate: false, skipped: false });
  }

  deleteExpiredBarrierRows(): Promise<number> {
    return Promise.resolve(0);
  }
}

const PAY: RegisteredAction = { name: 'pay', mode: 'saga', xa: false, at: false, handlers: { execute: () => null, compensate: () => null } };

function setUp(options: Partial<ParticipantModuleOptions> = {}, actions: RegisteredAction[] = [PAY]) {
  const layer = new SchemaLayer();
  const all: ParticipantModuleOptions = { name: 'wallet', coordinatorUrl: 'http://127.0.0.1:7070', ...options };
  const listed = [MSG_CHECK_ACTION, ...actions];
  const explorer = { get: (name: string, mode: string) => listed.find((a) => a.name === name && a.mode === mode), list: () => listed } as unknown as ParticipantExplorer;
  const schema = new ParticipantSchema(layer, all, explorer);
  const dispatcher = new BranchDispatcher(explorer, new BranchBarrier(layer, all), new PreparedTransactions(layer), new AtBranches(layer, all, explorer, schema), all, schema);
  const errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  return { layer, schema, dispatcher, errors };
}

const execute: PhaseCallBody = { gid: 'g1', branchId: 'b1', mode: 'saga', action: 'pay', phase: 'execute', payload: {} };

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('ParticipantSchema at start-up', () => {
  it('fails start-up in one line naming the participant, what is missing and the fix (schemaCheck fail, the default)', async () => {
    const { schema } = setUp();
    await expect(schema.checkedAtStartUp()).rejects.toThrow(new Error(`participant wallet: ${MISSING}`));
    // Asked once, whoever asks (registration and AT installation wait for the same check).
    await expect(schema.checkedAtStartUp()).rejects.toThrow(MISSING);
  });

  it('fails start-up when the schema cannot even be checked', async () => {
    const { layer, schema } = setUp();
    layer.gap = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    await expect(schema.checkedAtStartUp()).rejects.toThrow(
      "participant wallet: the SDK's tables could not be checked in the fake layer: connect ECONNREFUSED 127.0.0.1:5432",
    );
  });

  it('asks for AT mode’s objects only when there are AtAction methods', async () => {
    const plain = setUp();
    await plain.schema.checkedAtStartUp().catch(() => undefined);
    expect(plain.layer.asked).toEqual([{ at: false }]);
    const withAt = setUp({}, [{ name: 'debit', mode: '2pc', xa: false, at: true, handlers: { prepare: () => null } }]);
    await withAt.schema.checkedAtStartUp().catch(() => undefined);
    expect(withAt.layer.asked).toEqual([{ at: true }]);
  });

  it('under warn: logs the line, starts, and checks again until the schema is there', async () => {
    vi.useFakeTimers();
    const { layer, schema, errors } = setUp({ schemaCheck: 'warn' });
    await schema.checkedAtStartUp();
    expect(schema.missing).toBe(true);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0][0])).toBe(`participant wallet: ${MISSING} (schemaCheck is warn: not registered until it is there, checked again every 5 s)`);
    let present = false;
    void schema.present.then(() => (present = true));
    await vi.advanceTimersByTimeAsync(SCHEMA_RECHECK_MS);
    expect(present).toBe(false);
    layer.gap = null;
    await vi.advanceTimersByTimeAsync(SCHEMA_RECHECK_MS);
    expect(present).toBe(true);
    expect(schema.missing).toBe(false);
    expect(errors).toHaveBeenCalledTimes(1);
  });

  it('resolves present at once when the schema is whole', async () => {
    const { layer, schema } = setUp();
    layer.gap = null;
    await schema.checkedAtStartUp();
    await schema.present;
    expect(await schema.current()).toBeNull();
  });
});

describe('a call that finds the schema missing after start-up', () => {
  it('is answered schema_missing, logged once per distinct cause, and reported until a check finds the schema whole', async () => {
    const { layer, schema, dispatcher, errors } = setUp();
    layer.gap = null;
    await schema.checkedAtStartUp();
    layer.phaseError = new DtxSchemaError(MISSING);
    layer.gap = MISSING;
    for (let i = 0; i < 3; i++) expect(await dispatcher.dispatch({ ...execute, gid: `g${i}` })).toEqual({ kind: 'schema_missing', message: MISSING });
    const other = 'column dtx_barrier.result is missing in database shop: add ...dtxMigrations';
    layer.phaseError = new DtxSchemaError(other);
    expect(await dispatcher.dispatch(execute)).toEqual({ kind: 'schema_missing', message: other });
    expect(errors.mock.calls.map(([line]) => String(line))).toEqual([
      `calls fail: ${MISSING} (answered 503 DTX_SCHEMA_MISSING until it is there)`,
      `calls fail: ${other} (answered 503 DTX_SCHEMA_MISSING until it is there)`,
    ]);
    expect(await schema.current()).toBe(MISSING);
    // The migration ran: the next look finds it whole, and a later loss is said again.
    layer.gap = null;
    expect(await schema.current()).toBeNull();
    layer.phaseError = new DtxSchemaError(MISSING);
    await dispatcher.dispatch(execute);
    expect(errors).toHaveBeenCalledTimes(3);
  });

  it('leaves any other error to the transport (a 500)', async () => {
    const { layer, schema, dispatcher } = setUp();
    layer.gap = null;
    await schema.checkedAtStartUp();
    layer.phaseError = new Error('connection reset');
    await expect(dispatcher.dispatch(execute)).rejects.toThrow('connection reset');
  });
});
