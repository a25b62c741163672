import { Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { isTerminal } from '@nest-dtx/protocol';
import { BusModule } from '../bus/bus.module.js';
import { TxEventBus } from '../bus/tx-event-bus.js';
import type { Telemetry } from './telemetry-sdk.js';
import { endOpenTransactionSpans, transactionEnded } from './tracing.js';

/**
 * The app's side of OpenTelemetry (telemetry-sdk.ts starts it before the app listens): a
 * transaction's span ends when the bus says the transaction is terminal, whichever instance
 * finished it; at shutdown the spans still open end and the SDK exports what it holds.
 */
@Injectable()
export class TelemetryLifecycle implements OnApplicationShutdown {
  private telemetry: Telemetry | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly bus: TxEventBus) {}

  /**
   * The SDK this process started (startCoordinator, before the app listens), stopped with the
   * app. Only with spans on does the bus feed this: off, no bus message costs anything here.
   */
  attach(telemetry: Telemetry | null): void {
    this.telemetry = telemetry;
    if (!telemetry?.settings.traces || this.unsubscribe) return;
    this.unsubscribe = this.bus.subscribe((message) => {
      if (message.kind === 'tx' && isTerminal(message.status)) transactionEnded(message.gid, message.status);
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
