import { Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { isTerminal } from '@nest-dtx/protocol';
import { BusModule } from '../bus/bus.module.js';
import { TxEventBus } from '../bus/tx-event-bus.js';
import type { Telemetry } from './telemetry-sdk.js';
import { endOpenTransactionSpans, transactionEnded, tracingOn } from './tracing.js';

/**
 * The app's side of OpenTelemetry (telemetry-sdk.ts starts it before the app listens): a
 * transaction's span ends when the bus says the transaction is terminal, whichever instance
 * finished it; at shutdown the spans still open end and the SDK exports what it holds.
 */
@Injectable()
export class TelemetryLifecycle implements OnModuleInit, OnApplicationShutdown {
  private telemetry: Telemetry | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly bus: TxEventBus) {}

  /** The SDK this process started (startCoordinator), stopped with the app. */
  attach(telemetry: Telemetry | null): void {
    this.telemetry = telemetry;
  }

  onModuleInit(): void {
    this.unsubscribe = this.bus.subscribe((message) => {
      if (message.kind === 'tx' && tracingOn() && isTerminal(message.status)) transactionEnded(message.gid, message.status);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    endOpenTransactionSpans();
    await this.telemetry?.shutdown();
  }
}

@Module({ imports: [BusModule], providers: [TelemetryLifecycle], exports: [TelemetryLifecycle] })
export class TelemetryModule {}
