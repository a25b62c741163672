import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { ParticipantInvoker } from '../invoker/participant-invoker.service.js';
import { OverloadModule } from '../overload/overload.module.js';
import { StoreModule } from '../store/store.module.js';
import { ParticipantsAdminController, ParticipantsController } from './participants.controller.js';
import { ParticipantsService } from './participants.service.js';

/**
 * The participant registry (PROTOCOL.md 4) and the way to call a participant: the registry's
 * routes, ParticipantsService (lookups, cached, told of changes on the bus) and
 * ParticipantInvoker (the transports). The engine calls participants through both.
 */
@Module({
  imports: [StoreModule, BusModule, OverloadModule],
  controllers: [ParticipantsController, ParticipantsAdminController],
  providers: [ParticipantsService, ParticipantInvoker],
  exports: [ParticipantsService, ParticipantInvoker],
})
export class ParticipantsModule {}
