import { Module } from '@nestjs/common';
import { clientRateLimitModule } from '../auth/client-rate-limit.js';
import { EngineModule } from '../engine/engine.module.js';
import { OverloadModule } from '../overload/overload.module.js';
import { ParticipantsModule } from '../participants/participants.module.js';
import { TransactionsController } from './transactions.controller.js';
import { TransactionsService } from './transactions.service.js';

/** The client API (PROTOCOL.md 3), rate-limited per key (ClientRateLimitGuard, on its controller). */
@Module({
  imports: [EngineModule, ParticipantsModule, OverloadModule, clientRateLimitModule()],
  controllers: [TransactionsController],
  providers: [TransactionsService],
})
export class TransactionsModule {}
