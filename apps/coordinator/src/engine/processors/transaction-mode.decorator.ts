import { DiscoveryService } from '@nestjs/core';
import type { Mode } from '@nest-dtx/protocol';

/**
 * Marks a provider as the plug-in (ModeProcessor) of a mode: `@TransactionMode('tcc')`.
 * ModeExplorer finds every provider so marked when the application starts and registers it in
 * the ModeRegistry, as @nestjs/schedule does with @Cron. Adding a mode is one such class and its
 * entry in MODE_PROCESSOR_PROVIDERS; nothing else names it.
 */
export const TransactionMode = DiscoveryService.createDecorator<Mode>();
