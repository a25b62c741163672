import { Injectable, Logger, type OnModuleInit, type Type } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { EntityManager } from 'typeorm';
import type { Json, Mode, Phase, PhaseCallBody } from '@nest-dtx/protocol';
import type { BusinessAnswer } from '../data-layers/core/data-layer.js';
import { ACTION_METADATA, PARTICIPANT_METADATA, type ActionMetadata } from './decorators.js';
import { DTX_MSG_CHECK_ACTION } from './msg-check.js';

/**
 * What a business method receives next to its payload. `Tx` is the data layer's transactional
 * handle: a TypeORM EntityManager (the default), a pg PoolClient, a mysql2 PoolConnection, a
 * Prisma transaction client, a Drizzle or Kysely transaction, a MikroORM EntityManager, or the
 * Redis barrier's command list.
 */
export interface BranchContext<Tx = EntityManager> {
  gid: string;
  branchId: string;
  mode: Mode;
  action: string;
  phase: Phase;
  /**
   * This call's identity, plain JSON: keep it with work that answered `ongoing()` (a pending
   * approval, a payment request), and report the final answer with it when it comes
   * (`BranchOutcomes.report(call, 'ok')`), sooner than the coordinator's next repeat.
   */
  call: PhaseCallIdentity;
  /** The participant's local transaction: write through it so the barrier and the business commit together. */
  tx: Tx;
  /** The same handle as `tx`, under the name TypeORM users know it by. */
  manager: Tx;
}

/**
 * One phase call of one branch, as its outcome is reported to the coordinator (PROTOCOL.md 3.6).
 * A type rather than an interface, so that it is JSON to TypeScript too (a result may carry it).
 */
export type PhaseCallIdentity = {
  gid: string;
  branchId: string;
  phase: Phase;
};

/** What a business method receives next to its payload, for `call` run in the local transaction `tx`. */
export function branchContext<Tx>(call: PhaseCallBody, tx: Tx): BranchContext<Tx> {
  return {
    gid: call.gid,
    branchId: call.branchId,
    mode: call.mode,
    action: call.action,
    phase: call.phase,
    call: { gid: call.gid, branchId: call.branchId, phase: call.phase },
    tx,
    manager: tx,
  };
}

/** A phase method: it answers a result, `ongoing()`, or throws a BusinessFailure. */
export type PhaseHandler = (payload: Json, context: BranchContext<unknown>) => Promise<BusinessAnswer> | BusinessAnswer;

export interface RegisteredAction {
  name: string;
  mode: Mode;
  handlers: Partial<Record<Phase, PhaseHandler>>;
  /** 2PC through a prepared transaction of the database (see XaAction). */
  xa: boolean;
  /** 2PC in AT mode: undo log and row locks by triggers (see AtAction). */
  at: boolean;
  /** A saga compensate with no execute by design, through the barrier's `undo` rule (see LocalStepCompensation). */
  localStepCompensation?: boolean;
  /**
   * An action of the SDK itself rather than of the app: `msg-check`, the answer to msg's
   * check-back (DTX_MSG_CHECK_ACTION), which the dispatcher gives from the barrier alone.
   */
  builtIn?: 'msg-check';
}

/**
 * Every participant has it: any of its services may send a message with
 * `MsgBuilder.doAndSubmit`, whose check target it is. Registered like any action (mode msg),
 * so the coordinator accepts it as a message's `check`.
 */
export const MSG_CHECK_ACTION: Readonly<RegisteredAction> = { name: DTX_MSG_CHECK_ACTION, mode: 'msg', handlers: {}, xa: false, at: false, builtIn: 'msg-check' };

/**
 * Finds the actions declared with the SDK's decorators at start-up, the way @nestjs/schedule
 * finds @Cron methods: DiscoveryService + MetadataScanner + Reflector. A decorator naming a
 * method that does not exist fails the boot with a clear message.
 */
@Injectable()
export class ParticipantExplorer implements OnModuleInit {
  private readonly logger = new Logger('DtxParticipant');
  /** Keyed by `${mode}/${name}`: one action name may serve several modes. */
  private readonly actions = new Map<string, RegisteredAction>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    this.explore();
  }

  explore(): Map<string, RegisteredAction> {
    this.actions.clear();
    this.actions.set(`${MSG_CHECK_ACTION.mode}/${MSG_CHECK_ACTION.name}`, MSG_CHECK_ACTION);
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      const metatype = wrapper.metatype as Type | null;
      if (!instance || !metatype || typeof instance !== 'object') continue;
      if (!this.reflector.get<boolean>(PARTICIPANT_METADATA, metatype)) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName] as (...args: never[]) => unknown;
        const metadata = this.reflector.get<ActionMetadata | undefined>(ACTION_METADATA, method);
        if (metadata) this.add(instance as Record<string, unknown>, metatype.name, metadata);
      }
    }
    return this.actions;
  }

  get(action: string, mode: Mode): RegisteredAction | undefined {
    return this.actions.get(`${mode}/${action}`);
  }

  list(): RegisteredAction[] {
    return [...this.actions.values()];
  }

  private add(instance: Record<string, unknown>, className: string, metadata: ActionMetadata): void {
    if (metadata.name === DTX_MSG_CHECK_ACTION) {
      throw new Error(`${className}: the action name "${DTX_MSG_CHECK_ACTION}" is the SDK's own (msg's check-back), in every mode`);
    }
    const key = `${metadata.mode}/${metadata.name}`;
    if (this.actions.has(key)) {
      throw new Error(`${metadata.mode} action "${metadata.name}" is declared twice (second time in ${className})`);
    }
    const handlers: Partial<Record<Phase, PhaseHandler>> = {};
    for (const [phase, methodName] of Object.entries(metadata.methods) as [Phase, string][]) {
      const method = instance[methodName];
      if (typeof method !== 'function') {
        throw new Error(
          `${className}: action "${metadata.name}" names ${phase} method "${methodName}", but ${className} has no such method`,
        );
      }
      handlers[phase] = (method as PhaseHandler).bind(instance);
    }
    this.actions.set(key, {
      name: metadata.name,
      mode: metadata.mode,
      handlers,
      xa: metadata.xa ?? false,
      at: metadata.at ?? false,
      ...(metadata.localStepCompensation ? { localStepCompensation: true } : {}),
    });
    this.logger.log(`action ${metadata.name} (${metadata.mode}): ${Object.keys(handlers).join(', ')}`);
  }
}
