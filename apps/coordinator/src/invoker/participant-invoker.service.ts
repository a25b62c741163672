import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { CallOutcome, PhaseCallBody } from '@nest-dtx/protocol';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import type { RegisteredParticipant } from '../participants/participant-signing.js';
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

  /**
   * Every call is signed with the participant's keys (PROTOCOL.md 5.5). `leaseVersion`: the
   * transaction version under which this instance holds the lease, when it drives the call.
   */
  async call(participant: RegisteredParticipant, body: PhaseCallBody, leaseVersion?: number, traceparent?: string): Promise<CallOutcome> {
    const timeoutMs = this.config.env.CALL_TIMEOUT_MS;
    if (participant.transport === 'http') {
      if (!participant.endpoint) return { kind: 'transient', error: `participant ${participant.name} has no endpoint` };
      const sender = leaseVersion === undefined ? this.config.instanceId : `${this.config.instanceId}/${leaseVersion}`;
      return this.http.call(participant.endpoint, body, timeoutMs, {
        sender,
        traceparent,
        keys: participant.signing.keysAt(Date.now()),
        headers: participant.callHeaders,
      });
    }
    return this.microservices.call(participant, body, timeoutMs, participant.signing.keysAt(Date.now()));
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
