import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { MODES, type Mode } from '@nest-dtx/protocol';
import type { ModeProcessor } from './mode-processor.js';
import { ModeRegistry } from './mode-registry.js';
import { TransactionMode } from './transaction-mode.decorator.js';

/**
 * Registers every provider marked @TransactionMode, in whichever module it is provided, before
 * the application serves anything (module init comes before bootstrap and listen).
 *
 * Why discovery rather than a multi-provider token: Nest has no multi-providers, so a token
 * would be a factory whose `inject` list names every mode again, a second place to edit for
 * each new mode. Discovery finds a mode by its decorator alone, and refuses a wiring mistake
 * (a mode twice, a mode that is not one, a plug-in that is not a singleton) at start-up.
 */
@Injectable()
export class ModeExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly registry: ModeRegistry,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: TransactionMode.KEY })) {
      const mode: unknown = this.discovery.getMetadataByDecorator(TransactionMode, wrapper);
      if (!MODES.includes(mode as Mode)) throw new Error(`${wrapper.name} is marked @TransactionMode with ${JSON.stringify(mode)}, which is not a mode`);
      // A request-scoped or transient plug-in has no one instance to register: the engine holds them for the process.
      if (!wrapper.isDependencyTreeStatic() || !wrapper.instance) throw new Error(`${wrapper.name}, the plug-in of mode ${String(mode)}, must be a singleton provider`);
      this.registry.register(mode as Mode, wrapper.instance as ModeProcessor);
    }
  }
}
