import { SetMetadata, applyDecorators } from '@nestjs/common';
import type { Mode, Phase } from '@nest-dtx/protocol';

export const PARTICIPANT_METADATA = 'dtx:participant';
export const ACTION_METADATA = 'dtx:action';

/** What an action decorator records on its phase-1 method. */
export interface ActionMetadata {
  /** Action name as the coordinator and clients know it. */
  name: string;
  mode: Mode;
  /** Names of the methods (on the same class) that run each phase. */
  methods: Partial<Record<Phase, string>>;
  /**
   * 2PC backed by a real prepared transaction of the database (Postgres PREPARE TRANSACTION,
   * MySQL/MariaDB XA PREPARE); commit and rollback finish it (no methods needed).
   */
  xa?: boolean;
  /** 2PC in AT mode: the SDK records how to undo the work and locks its rows (see AtAction). */
  at?: boolean;
  /**
   * A saga action with only `compensate`, for a workflow's local steps (see LocalStepCompensation):
   * its calls go through the barrier's `undo` rule, since no phase 1 ever reaches it.
   */
  localStepCompensation?: boolean;
}

function actionDecorator(build: (methodName: string) => ActionMetadata): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    applyDecorators(SetMetadata(ACTION_METADATA, build(String(propertyKey))))(target, propertyKey, descriptor);
  };
}

/** Marks a provider as holding transactional actions. The participant's name is set in the module options. */
export const TransactionParticipant = (): ClassDecorator => SetMetadata(PARTICIPANT_METADATA, true);

export interface TccActionOptions {
  /** Action name; defaults to the method name. */
  name?: string;
  /** Method that confirms what try reserved. */
  confirm: string;
  /** Method that cancels what try reserved. */
  cancel: string;
}

/**
 * Declares a TCC action: the decorated method is `try`; `confirm` and `cancel` name sibling
 * methods. Every phase runs inside the barrier, in the participant's own database transaction.
 */
export function TccAction(options: TccActionOptions): MethodDecorator {
  return actionDecorator((method) => ({
    name: options.name ?? method,
    mode: 'tcc',
    methods: { try: method, confirm: options.confirm, cancel: options.cancel },
  }));
}

export interface TwoPhaseActionOptions {
  /** Action name; defaults to the method name. */
  name?: string;
  /** Method that makes what prepare did permanent. */
  commit: string;
  /** Method that undoes what prepare did. */
  rollback: string;
}

/**
 * Declares a 2PC action whose phases are business methods under the barrier: the decorated
 * method is `prepare`; `commit` and `rollback` name sibling methods.
 */
export function TwoPhaseAction(options: TwoPhaseActionOptions): MethodDecorator {
  return actionDecorator((method) => ({
    name: options.name ?? method,
    mode: '2pc',
    methods: { prepare: method, commit: options.commit, rollback: options.rollback },
  }));
}

/**
 * Declares a 2PC action backed by a prepared transaction of the database (XA): the decorated
 * method does the work through the handle it receives (`context.tx`); the SDK ends that local
 * transaction prepared (Postgres PREPARE TRANSACTION, MySQL/MariaDB XA END + XA PREPARE) and
 * finishes it (COMMIT/ROLLBACK PREPARED, XA COMMIT/ROLLBACK) when the coordinator decides. On
 * the data layers that have XA: TypeORM and pg on Postgres (max_prepared_transactions > 0),
 * mysql2 on MySQL/MariaDB, Kysely on Postgres; on the others the participant refuses to start.
 */
export function XaAction(options: { name?: string } = {}): MethodDecorator {
  return actionDecorator((method) => ({ name: options.name ?? method, mode: '2pc', methods: { prepare: method }, xa: true }));
}

export interface AtActionOptions {
  /** Action name; defaults to the method name. */
  name?: string;
}

/**
 * Declares an AT action (automatic compensation, as Seata's AT mode): the decorated method does
 * its work plainly, through the handle it receives (`context.tx` / `context.manager`), with no
 * commit or rollback method. Row triggers on the tables the module's `at.tables` option names
 * record each changed row's before and after images and lock the row for the global
 * transaction, in the same local transaction, which then commits. The coordinator sees a 2PC
 * action: on commit the SDK drops the undo rows and locks; on rollback it restores the before
 * images, refusing (and flagging the transaction) if a row no longer equals what the branch
 * left. Postgres data layers only; on the others the participant refuses to start.
 */
export function AtAction(options: AtActionOptions = {}): MethodDecorator {
  return actionDecorator((method) => ({ name: options.name ?? method, mode: '2pc', methods: { prepare: method }, at: true }));
}

export interface SagaActionOptions {
  /** Action name; defaults to the method name. */
  name?: string;
  /** Method that semantically undoes the step. */
  compensate: string;
}

/** Declares a saga step: the decorated method is the forward action; `compensate` names its undo. */
export function SagaAction(options: SagaActionOptions): MethodDecorator {
  return actionDecorator((method) => ({
    name: options.name ?? method,
    mode: 'saga',
    methods: { execute: method, compensate: options.compensate },
  }));
}

export interface LocalStepCompensationOptions {
  /** Action name; defaults to the method name. */
  name?: string;
}

/**
 * Declares the compensation of a workflow's local steps (PROTOCOL.md 3.7): the decorated method
 * undoes, on rollback, work that ran in the workflow's host (`wf.local(work, { compensate:
 * { participant, action, payload } })`). Registered as a saga action with only a `compensate`
 * (the coordinator calls it as one, branch id = the step id); an `execute` of it is refused
 * (400). Its calls go through the barrier's own `undo` rule: a `@SagaAction`'s compensate
 * without its execute is a null compensation and would skip the method, but here there is no
 * execute by design, so the first call runs it, a repeat is a duplicate (skipped), and one that
 * answered `ongoing()` is run again until it answers for good.
 */
export function LocalStepCompensation(options: LocalStepCompensationOptions = {}): MethodDecorator {
  return actionDecorator((method) => ({ name: options.name ?? method, mode: 'saga', methods: { compensate: method }, localStepCompensation: true }));
}

export interface MsgActionOptions {
  /** Action name; defaults to the method name. */
  name?: string;
}

/**
 * Declares the receiving side of a two-phase message (mode msg, PROTOCOL.md 3.1): the decorated
 * method is the branch's `execute`, delivered once the caller's local transaction committed and
 * the message was submitted. It runs inside the barrier like a phase 1: a redelivered `execute`
 * (the coordinator delivers at least once, and retries until 2xx) answers the stored result and
 * changes nothing. It must succeed eventually: a BusinessFailure (409) is a bug the coordinator
 * retries and flags for attention, since the caller's side has already committed.
 */
export function MsgAction(options: MsgActionOptions = {}): MethodDecorator {
  return actionDecorator((method) => ({ name: options.name ?? method, mode: 'msg', methods: { execute: method } }));
}
