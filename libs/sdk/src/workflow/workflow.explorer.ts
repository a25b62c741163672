import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { Json } from '@nest-dtx/protocol';
import type { WorkflowContext } from './workflow-context.js';
import { WORKFLOW_METADATA, type WorkflowMetadata } from './workflow.decorator.js';
import { WorkflowRegistry } from './workflow.registry.js';

/**
 * Finds the @Workflow methods at start-up, the way @nestjs/schedule finds @Cron methods: on
 * every provider of the app (a workflow needs no class decorator), with DiscoveryService,
 * MetadataScanner and Reflector. Fills the WorkflowRegistry before the participant registers
 * (which is at application bootstrap, after every onModuleInit).
 */
@Injectable()
export class WorkflowExplorer implements OnModuleInit {
  private readonly logger = new Logger('DtxWorkflow');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly registry: WorkflowRegistry,
  ) {}

  onModuleInit(): void {
    this.explore();
  }

  explore(): void {
    this.registry.clear();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const metadata = this.reflector.get<WorkflowMetadata | undefined>(WORKFLOW_METADATA, method);
        if (!metadata) continue;
        const declaredAt = `${instance.constructor.name}.${methodName}`;
        // A request-scoped provider has no instance outside a request, and a run (a resume) is no request.
        if (!wrapper.isDependencyTreeStatic()) throw new Error(`${declaredAt}: a workflow must be on a singleton provider, not a request-scoped one`);
        const bound = (method as (context: WorkflowContext<Json>) => unknown).bind(instance);
        // Through an async function, so that one that throws before its first await rejects rather than throws.
        this.registry.add({ name: metadata.name, declaredAt, run: async (context) => await bound(context) });
        this.logger.log(`workflow ${metadata.name}: ${declaredAt}`);
      }
    }
  }
}
