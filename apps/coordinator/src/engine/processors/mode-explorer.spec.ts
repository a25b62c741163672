/**
 * Modes register themselves: every provider marked @TransactionMode, in whichever module, is in
 * the ModeRegistry once the application has started; wiring mistakes stop the start.
 */
import { Injectable, Module, Scope, type Type } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import type { BranchMode } from '@nest-dtx/protocol';
import { CoordinatorConfig, loadCoordinatorEnv } from '../../config/coordinator.config.js';
import { MetricsService } from '../../metrics/metrics.service.js';
import { ParticipantsService } from '../../participants/participants.service.js';
import { DatabaseTime } from '../../store/database-clock.js';
import { BranchCaller } from '../branch-caller.js';
import { ModeNotSupportedError } from '../errors.js';
import { TransactionWriter } from '../transaction-writer.js';
import type { ModeProcessor } from './mode-processor.js';
import { MODE_PROCESSOR_PROVIDERS } from './mode-processors.js';
import { ModeExplorer } from './mode-explorer.js';
import { ModeRegistry } from './mode-registry.js';
import { MsgProcessor } from './msg.processor.js';
import { SagaProcessor } from './saga.processor.js';
import { TccProcessor } from './tcc.processor.js';
import { TwoPhaseCommitProcessor } from './two-phase-commit.processor.js';
import { TransactionMode } from './transaction-mode.decorator.js';

/** A plug-in that does nothing: what registration needs of one. */
const stubMode = (): ModeProcessor => ({
  rules: { moves: { active: [], committing: [], rolling_back: [], committed: [], rolled_back: [] }, addsBranches: false, afterPhase1: {}, phase1Answers: null, clientDecides: false, atDeadline: 'roll_back' },
  phase1InBackground: false,
  begin: () => Promise.reject(new Error('not here')),
  kindOf: () => 'tcc',
  nextActive: () => null,
  nextDecided: () => ({ calls: [], answered: () => [] }),
  waveOf: () => ({ calls: [], answered: () => [] }),
});

function pluginClass(mode: string, scope = Scope.DEFAULT): Type<ModeProcessor> {
  @Injectable({ scope })
  @TransactionMode(mode as BranchMode)
  class Plugin {
    readonly stub = stubMode();
    readonly rules = this.stub.rules;
    readonly phase1InBackground = false;
    begin = this.stub.begin;
    kindOf = this.stub.kindOf;
    nextActive = this.stub.nextActive;
    nextDecided = this.stub.nextDecided;
    waveOf = this.stub.waveOf;
  }
  return Plugin;
}

/** What the real plug-ins and the round are built from, without a database or participants. */
const DEPENDENCIES = [
  { provide: ParticipantsService, useValue: {} },
  { provide: TransactionWriter, useValue: {} },
  { provide: BranchCaller, useValue: {} },
  { provide: MetricsService, useValue: {} },
  { provide: CoordinatorConfig, useValue: new CoordinatorConfig(loadCoordinatorEnv({ INSTANCE_ID: 'explorer-spec' })) },
  { provide: DatabaseTime, useValue: new DatabaseTime() },
];

async function started(imports: Type[], providers: unknown[]): Promise<ModeRegistry> {
  const module = await Test.createTestingModule({ imports, providers: providers as never[] }).compile();
  await module.init();
  return module.get(ModeRegistry);
}

describe('ModeExplorer and ModeRegistry', () => {
  it('registers each plug-in of MODE_PROCESSOR_PROVIDERS under the mode its decorator names', async () => {
    const registry = await started([], [...DEPENDENCIES, ...MODE_PROCESSOR_PROVIDERS]);
    expect(registry.modes.sort()).toEqual(['2pc', 'msg', 'saga', 'tcc']);
    expect(registry.get('tcc')).toBeInstanceOf(TccProcessor);
    expect(registry.get('2pc')).toBeInstanceOf(TwoPhaseCommitProcessor);
    expect(registry.get('saga')).toBeInstanceOf(SagaProcessor);
    expect(registry.get('msg')).toBeInstanceOf(MsgProcessor);
  });

  it('answers a mode without a plug-in (workflow, for now) with ModeNotSupportedError', async () => {
    const registry = await started([], [...DEPENDENCIES, ...MODE_PROCESSOR_PROVIDERS]);
    expect(() => registry.get('workflow')).toThrow(ModeNotSupportedError);
  });

  it('finds a plug-in provided in another module: adding a mode is its class and its provider entry', async () => {
    const Workflow = pluginClass('workflow');
    @Module({ providers: [Workflow] })
    class WorkflowModule {}
    const registry = await started([WorkflowModule], [...DEPENDENCIES, ...MODE_PROCESSOR_PROVIDERS]);
    expect(registry.get('workflow')).toBeInstanceOf(Workflow);
  });

  it('refuses two plug-ins for one mode at start-up', async () => {
    await expect(started([], [...DEPENDENCIES, ...MODE_PROCESSOR_PROVIDERS, pluginClass('tcc')])).rejects.toThrow('mode tcc has two plug-ins');
  });

  it('refuses a decorator naming what is not a mode, and a plug-in that is not a singleton', async () => {
    const base = [ModeRegistry, ModeExplorer, DiscoveryService];
    await expect(started([], [...base, pluginClass('xa')])).rejects.toThrow('which is not a mode');
    await expect(started([], [...base, pluginClass('saga', Scope.REQUEST)])).rejects.toThrow('must be a singleton provider');
  });

  it('lets a registry be filled by hand (as the engine spec does), one plug-in a mode', () => {
    const registry = new ModeRegistry();
    const tcc = stubMode();
    registry.register('tcc', tcc);
    registry.register('tcc', tcc);
    expect(registry.get('tcc')).toBe(tcc);
    expect(() => registry.register('tcc', stubMode())).toThrow('two plug-ins');
  });
});
