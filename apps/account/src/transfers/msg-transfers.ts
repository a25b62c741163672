import type { ModuleMetadata } from '@nestjs/common';
import { DtxClientModule } from '@nest-dtx/sdk';
import type { ServiceEnv } from '@app/demo-support';
import { MsgCredits } from './msg-credits.service.js';
import { MsgTransfersController } from './msg-transfers.controller.js';
import { MsgTransfersService } from './msg-transfers.service.js';

/**
 * Transfers as two-phase messages (mode msg): what the account service adds to its module.
 * Declared in the app's own module rather than a module of their own because they need the
 * BranchBarrier, which DtxParticipantModule exports to the module importing it.
 */
export function msgTransfers(env: ServiceEnv): Required<Pick<ModuleMetadata, 'imports' | 'controllers' | 'providers'>> {
  return {
    imports: [DtxClientModule.forRoot({ coordinatorUrl: env.COORDINATOR_URL, apiKey: env.COORDINATOR_API_KEY, timeoutMs: 10_000 })],
    controllers: [MsgTransfersController],
    providers: [MsgTransfersService, MsgCredits],
  };
}
