import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { CallOutcome, PhaseCallBody } from '@app/protocol';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import type { ParticipantEntity } from '../participants/participant.entity.js';
import { HttpParticipantTransport } from './http-participant.transport.js';
import { MicroserviceParticipantTransport } from './microservice-participant.transport.js';

/** Calls a registered participant over its transport and maps the answer to ok / failed / transient. */
@Injectable()
export class ParticipantInvoker implements OnModuleDestroy {
  private readonly http: HttpParticipantTransport;
  private readonly microservices: MicroserviceParticipantTransport;

  constructor(private readonly config: CoordinatorConfig) {
    this.http = new HttpParticipantTransport();
    this.microservices = new MicroserviceParticipantTransport(config.redisUrl);
  }

  /** `leaseVersion`: the transaction version under which this instance holds the lease, when it drives the call. */
  async call(participant: ParticipantEntity, body: PhaseCallBody, leaseVersion?: number, traceparent?: string): Promise<CallOutcome> {
    const timeoutMs = this.config.env.CALL_TIMEOUT_MS;
    if (participant.transport === 'http') {
      if (!participant.endpoint) return { kind: 'transient', error: `participant ${participant.name} has no endpoint` };
      const sender = leaseVersion === undefined ? this.config.instanceId : `${this.config.instanceId}/${leaseVersion}`;
      return this.http.call(participant.endpoint, body, timeoutMs, sender, traceparent);
    }
    return this.microservices.call(participant, body, timeoutMs);
  }

  /** A participant registered again, perhaps at another address: reconnect on next use. */
  forget(name: string): void {
    this.microservices.forget(name);
  }

  async onModuleDestroy(): Promise<void> {
    this.http.close();
    await this.microservices.close();
  }
}
