import { Injectable, type OnModuleInit, type OnModuleDestroy } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { ErrorCode, type Mode, type ParticipantView, type RegisterParticipantDto } from '@app/protocol';
import { ApiError } from '../common/api-error.js';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import { ParticipantEntity } from './participant.entity.js';
import { hostOutsideAllowList } from './participant-hosts.js';

/**
 * The participant registry. Kept in memory (reads on the hot path cost no Postgres round trip)
 * and refreshed from Postgres when another instance announces a change on the bus.
 */
@Injectable()
export class ParticipantsService implements OnModuleInit, OnModuleDestroy {
  private readonly cache = new Map<string, ParticipantEntity>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    @InjectRepository(ParticipantEntity) private readonly repository: Repository<ParticipantEntity>,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    for (const participant of await this.repository.find()) this.cache.set(participant.name, participant);
    this.unsubscribe = this.bus.subscribe((message) => {
      if (message.kind === 'participant') this.cache.delete(message.name);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  async register(dto: RegisterParticipantDto): Promise<ParticipantView> {
    if (dto.transport === 'redis' && !this.config.redisUrl) {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'transport redis needs a coordinator started with REDIS_URL', {
        field: 'transport',
      });
    }
    const refused = hostOutsideAllowList(this.config.participantHosts, dto);
    if (refused) {
      throw new ApiError(403, ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED, `${refused.field} names host ${refused.host}, which PARTICIPANT_HOSTS does not allow`, {
        field: refused.field,
      });
    }
    const entity = this.repository.create({
      name: dto.name,
      transport: dto.transport,
      endpoint: dto.transport === 'http' ? (dto.endpoint ?? null) : null,
      host: dto.transport === 'tcp' ? (dto.host ?? null) : null,
      port: dto.transport === 'tcp' ? (dto.port ?? null) : null,
      actions: dto.actions.map((a) => ({ name: a.name, modes: [...new Set(a.modes)] })),
    });
    await this.repository.upsert(entity, ['name']);
    const saved = await this.repository.findOneByOrFail({ name: dto.name });
    this.cache.set(saved.name, saved);
    this.bus.publish({ kind: 'participant', name: saved.name });
    return toView(saved);
  }

  async list(): Promise<ParticipantView[]> {
    const all = await this.repository.find({ order: { name: 'ASC' } });
    return all.map(toView);
  }

  async find(name: string): Promise<ParticipantEntity | null> {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const found = await this.repository.findOneBy({ name });
    if (found) this.cache.set(name, found);
    return found;
  }

  /** The participant of a branch, checked to expose `action` in `mode`; a 400 otherwise. */
  async resolve(name: string, action: string, mode: Mode, fieldPrefix: string): Promise<ParticipantEntity> {
    const field = (key: string) => (fieldPrefix ? `${fieldPrefix}.${key}` : key);
    const participant = await this.find(name);
    if (!participant) {
      throw new ApiError(400, ErrorCode.UNKNOWN_PARTICIPANT, `participant ${name} is not registered`, { field: field('participant') });
    }
    const declared = participant.actions.find((a) => a.name === action);
    if (!declared || !declared.modes.includes(mode)) {
      throw new ApiError(400, ErrorCode.UNKNOWN_ACTION, `participant ${name} has no action ${action} for mode ${mode}`, {
        field: field('action'),
      });
    }
    return participant;
  }
}

function toView(p: ParticipantEntity): ParticipantView {
  return {
    name: p.name,
    transport: p.transport,
    endpoint: p.endpoint,
    host: p.host,
    port: p.port,
    actions: p.actions,
    updatedAt: new Date(p.updatedAt).toISOString(),
  };
}
