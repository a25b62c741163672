import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { OverloadModule } from '../overload/overload.module.js';
import { ParticipantsModule } from '../participants/participants.module.js';
import { StoreModule } from '../store/store.module.js';
import { BranchCaller } from './branch-caller.js';
import { MODE_PROCESSOR_PROVIDERS } from './processors/mode-processors.js';
import { TransactionEngine } from './transaction-engine.service.js';
import { TransactionWriter } from './transaction-writer.js';

/**
 * The engine: the state machine's conductor and, through TransactionWriter, the only writer of
 * the transaction log. Only TransactionEngine leaves this module; the writer, the caller and
 * the mode processors are its own.
 */
@Module({
  imports: [StoreModule, BusModule, MetricsModule, OverloadModule, ParticipantsModule],
  providers: [BranchCaller, TransactionWriter, ...MODE_PROCESSOR_PROVIDERS, TransactionEngine],
  exports: [TransactionEngine],
})
export class EngineModule {}
