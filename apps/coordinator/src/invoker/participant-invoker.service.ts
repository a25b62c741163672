import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { CallOutcome, PhaseCallBody, TraceContextHeaders } from '@nest-dtx/protocol';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { DependencyOutages } from '../logging/dependency-outages.js';
import type { RegisteredParticipant } from '../participants/participant-signing.js';
import { DatabaseTime } from '../store/database-clock.js';
import { HttpParticipantTransport } from './http-participant.transport.js';
import { MicroserviceParticipantTransport } from './microservice-participant.transport.js';
import { NatsParticipantTransport } from './nats-participant.transport.js';
import { RabbitMqParticipantTransport } from './rabbitmq-participant.transport.js';

/** Calls a registered participant over its transport and maps the answer to ok / failed / transient. */
@Injectable()
export class ParticipantInvoker implements OnModuleDestroy {
  private readonly http: HttpParticipantTransport;
  private readonly microservices: MicroserviceParticipantTransport;
  private readonly rabbitmq: RabbitMqParticipantTransport;
  private readonly nats: NatsParticipantTransport;

  constructor(
    private readonly config: CoordinatorConfig,
    // A rotated-out secret signs until a time stored in the database: compared in its time.
    private readonly clock: DatabaseTime,
    outages: DependencyOutages,
  ) {
    this.http = new HttpParticipantTransport(config.participantNetworks);
    this.microservices = new MicroserviceParticipantTransport(config.redisUrl, config.participantNetworks);
    // Broker connections open on first use: an instance with RABBITMQ_URL or NATS_URL but no
    // such participant never connects.
    this.rabbitmq = new RabbitMqParticipantTransport(config.rabbitmqUrl, config.env.CALL_TIMEOUT_MS, outages.rabbitmq);
    this.nats = new NatsParticipantTransport(config.natsUrl, config.env.CALL_TIMEOUT_MS, outages.nats);
  }

  /**
   * Every call is signed with the participant's keys (PROTOCOL.md 5.5). `timeoutMs`: what is left
   * of the call's CALL_TIMEOUT_MS after it waited for a slot. `leaseVersion`: the
   * transaction version under which this instance holds the lease, when it drives the call.
   * `trace`: the W3C trace context the call carries, as each transport carries it (@nest-dtx/protocol trace-context.ts).
   */
  async call(participant: RegisteredParticipant, body: PhaseCallBody, timeoutMs: number, leaseVersion?: number, trace?: TraceContextHeaders): Promise<CallOutcome> {
    switch (participant.transport) {
      case 'http': {
        if (!participant.endpoint) return { kind: 'transient', error: `participant ${participant.name} has no endpoint` };
        const sender = leaseVersion === undefined ? this.config.instanceId : `${this.config.instanceId}/${leaseVersion}`;
        return this.http.call(participant.endpoint, body, timeoutMs, {
          sender,
          trace,
          keys: participant.signing.keysAt(this.clock.now()),
          headers: participant.callHeaders,
        });
      }
      case 'rabbitmq':
        return this.rabbitmq.call(participant, body, timeoutMs, participant.signing.keysAt(this.clock.now()), trace);
      case 'nats':
        return this.nats.call(participant, body, timeoutMs, participant.signing.keysAt(this.clock.now()), trace);
      case 'tcp':
      case 'redis':
        return this.microservices.call(participant, body, timeoutMs, participant.signing.keysAt(this.clock.now()), trace);
    }
  }

  /** A participant registered again, perhaps at another address: reconnect on next use. */
  forget(name: string): void {
    this.microservices.forget(name);
    this.rabbitmq.forget(name);
  }

  async onModuleDestroy(): Promise<void> {
    this.http.close();
    await Promise.all([this.microservices.close(), this.rabbitmq.close(), this.nats.close()]);
  }
}
