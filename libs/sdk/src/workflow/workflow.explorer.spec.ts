import { Injectable, Scope } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Json } from '@nest-dtx/protocol';
import type { BranchDispatcher } from '../participant/branch-dispatcher.js';
import type { CallVerifier } from '../participant/call-verifier.js';
import { ParticipantMessageHandler } from '../participant/participant-message.handler.js';
import { CallSources } from '../tracing/handle-span.js';
import type { WorkflowContext } from './workflow-context.js';
import { Workflow } from './workflow.decorator.js';
import { WorkflowExplorer } from './workflow.explorer.js';
import { WorkflowRegistry } from './workflow.registry.js';

@Injectable()
class OrderWorkflows {
  readonly prefix = 'order';

  @Workflow('placeOrder')
  placeOrder(wf: WorkflowContext<{ orderId: string }>): Promise<string> {
    return Promise.resolve(`${this.prefix} ${wf.input.orderId}`);
  }

  @Workflow()
  cancelOrder(): Promise<null> {
    return Promise.resolve(null);
  }

  notAWorkflow(): void {}
}

@Injectable()
class SecondPlaceOrder {
  @Workflow('placeOrder')
  placeOrder(): Promise<null> {
    return Promise.resolve(null);
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequest {
  @Workflow('perRequest')
  run(): Promise<null> {
    return Promise.resolve(null);
  }
}

async function explored(...providers: (new () => object)[]): Promise<WorkflowRegistry> {
  const moduleRef = await Test.createTestingModule({ imports: [DiscoveryModule], providers: [WorkflowRegistry, WorkflowExplorer, ...providers] }).compile();
  await moduleRef.init();
  return moduleRef.get(WorkflowRegistry);
}

describe('WorkflowExplorer', () => {
  it('finds @Workflow methods on any provider (named, or by the method name), bound to the instance', async () => {
    const registry = await explored(OrderWorkflows);
    expect(registry.names().sort()).toEqual(['cancelOrder', 'placeOrder']);
    const placeOrder = registry.get('placeOrder')!;
    expect(placeOrder.declaredAt).toBe('OrderWorkflows.placeOrder');
    expect(await placeOrder.run({ input: { orderId: 'o-1' } } as unknown as WorkflowContext<Json>)).toBe('order o-1');
  });

  it('fails the boot on a workflow name declared twice, or on a request-scoped provider', async () => {
    await expect(explored(OrderWorkflows, SecondPlaceOrder)).rejects.toThrow('workflow "placeOrder" is declared twice (OrderWorkflows.placeOrder and SecondPlaceOrder.placeOrder)');
    await expect(explored(PerRequest)).rejects.toThrow('PerRequest.run: a workflow must be on a singleton provider');
  });
});

describe('a resume answered ongoing on the message transports', () => {
  it('is replied { outcome: "ongoing" } (PROTOCOL.md 3.6), as HTTP answers 202', async () => {
    const body = { gid: 'g', branchId: 'resume', mode: 'workflow', action: 'placeOrder', phase: 'resume', payload: {} };
    const verifier = { check: () => ({ ok: true, body }) } as unknown as CallVerifier;
    const dispatcher = { dispatch: () => Promise.resolve({ kind: 'ongoing' }) } as unknown as BranchDispatcher;
    const handler = new ParticipantMessageHandler(verifier, dispatcher);
    expect(await firstValueFrom(await handler.handle(body, CallSources.tcp()))).toEqual({ outcome: 'ongoing' });
  });
});
