import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { CallOutcome, PhaseCallBody } from '@app/protocol';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import type { ParticipantEntity } from '../participants/participant.entity.js';
import { HttpParticipantTransport } from './http-participant.transport.js';

/** Calls a registered participant over its transport and maps the answer to ok / failed / transient. */
@Injectable()
export class ParticipantInvoker implements OnModuleDestroy {
  private readonly http = new HttpParticipantTransport();

  constructor(private readonly config: CoordinatorConfig) {}

  async call(participant: ParticipantEntity, body: PhaseCallBody): Promise<CallOutcome> {
    const timeoutMs = this.config.env.CALL_TIMEOUT_MS;
    switch (participant.transport) {
      case 'http':
        if (!participant.endpoint) return { kind: 'transient', error: `participant ${participant.name} has no endpoint` };
        return this.http.call(participant.endpoint, body, timeoutMs);
      case 'tcp':
      case 'redis':
        return { kind: 'transient', error: `transport ${participant.transport} is not available yet` };
    }
  }

  onModuleDestroy(): void {
    this.http.close();
  }
}
