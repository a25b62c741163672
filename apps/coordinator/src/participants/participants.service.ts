import { randomBytes } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit, type OnModuleDestroy } from '@nestjs/common';
import {
  ErrorCode,
  type Mode,
  type ParticipantAdminView,
  type ParticipantRegistrationView,
  type ParticipantView,
  type RegisterParticipantDto,
  type SecretRotationView,
} from '@nest-dtx/protocol';
import type { ApiKey } from '../auth/api-keys.js';
import { ApiError } from '../common/api-error.js';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';
import type { GateSnapshot } from '../overload/participant-gate.js';
import { ParticipantGates } from '../overload/participant-gates.service.js';
import type { ParticipantRecord } from '../store/records.js';
import { DatabaseTime } from '../store/database-clock.js';
import { ParticipantStore } from '../store/participant.store.js';
import { brokerRegistrationProblem } from './broker-registration.js';
import { checkCallHeaders } from './call-headers.js';
import { registrationAddressRefusal } from './egress-policy.js';
import { hostOutsideAllowList } from './participant-hosts.js';
import { participantLoadView } from './participant-load.js';
import { ParticipantSigning, type RegisteredParticipant } from './participant-signing.js';
import { UnresolvedParticipantError } from './unresolved-participant.error.js';

/** The cache's key: participant names are case-insensitive (`Bank-A` and `bank-a` are one). */
const keyOf = (name: string): string => name.toLowerCase();

/** One page of GET /v1/participants. */
export interface ParticipantPage {
  items: ParticipantView[];
  /** The cursor of the next page; null on the last one. */
  nextCursor: string | null;
}

/**
 * The participant registry. Kept in memory (reads on the hot path cost no Postgres round trip)
 * and refreshed from Postgres when another instance announces a change on the bus. Each entry
 * carries the keys its calls are signed with, derived from the coordinator's signing secret.
 */
@Injectable()
export class ParticipantsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Participants');
  private readonly cache = new Map<string, RegisteredParticipant>();
  private unsubscribe: (() => void) | null = null;
  private coordinatorSecret: Buffer | null = null;

  constructor(
    private readonly store: ParticipantStore,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
    private readonly gates: ParticipantGates,
    private readonly clock: DatabaseTime,
  ) {}

  async onModuleInit(): Promise<void> {
    const configured = this.config.signingSecret;
    this.coordinatorSecret = configured ?? (await this.store.storedSigningSecret(randomBytes(32)));
    this.logger.log(
      configured
        ? 'signing participant calls with secrets derived from SIGNING_SECRET'
        : 'signing participant calls with secrets derived from the coordinator secret kept in Postgres (SIGNING_SECRET unset)',
    );
    const networks = this.config.participantNetworks;
    this.logger.log(
      `participant egress policy: calls go to ${networks.describe()} addresses (${networks.source}); link-local, unspecified, multicast, broadcast and reserved addresses never`,
    );
    for (const record of await this.store.list()) this.remember(record);
    this.unsubscribe = this.bus.subscribe((message) => {
      if (message.kind !== 'participant') return;
      this.cache.delete(keyOf(message.name));
      void this.refreshGate(message.name);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /**
   * Registers (or updates) a participant and answers with its signing secret. With API keys,
   * the name belongs to the key that first registered it: another key is refused (403) and
   * nothing changes.
   */
  async register(dto: RegisterParticipantDto, key: ApiKey | undefined): Promise<ParticipantRegistrationView> {
    const brokers = { redis: !!this.config.redisUrl, rabbitmq: !!this.config.rabbitmqUrl, nats: !!this.config.natsUrl };
    const problem = brokerRegistrationProblem(dto, brokers);
    if (problem) throw new ApiError(400, problem.code, problem.message, { field: problem.field });
    const headers = checkCallHeaders(dto.headers, dto.transport);
    if (!headers.ok) throw new ApiError(400, ErrorCode.VALIDATION_FAILED, headers.message, { field: headers.field });
    // The allow-list first: a host off the list is refused as such, whatever its address.
    const refused = hostOutsideAllowList(this.config.participantHosts, dto);
    if (refused) {
      const what = refused.field === 'port' ? `port ${refused.port} of host ${refused.host}` : `host ${refused.host}${refused.port === null ? '' : ` (port ${refused.port})`}`;
      throw new ApiError(403, ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED, `${refused.field} names ${what}, which PARTICIPANT_HOSTS does not allow`, {
        field: refused.field,
      });
    }
    const refusedAddress = registrationAddressRefusal(this.config.participantNetworks, dto);
    if (refusedAddress) {
      throw new ApiError(403, ErrorCode.PARTICIPANT_ADDRESS_NOT_ALLOWED, `${refusedAddress.field}: ${refusedAddress.reason}`, { field: refusedAddress.field });
    }
    const limit = this.config.env.MAX_ACTIONS_PER_PARTICIPANT;
    if (dto.actions.length > limit) {
      throw new ApiError(400, ErrorCode.VALIDATION_FAILED, `actions must contain no more than ${limit} elements (MAX_ACTIONS_PER_PARTICIPANT)`, { field: 'actions' });
    }
    const bindToKeys = this.config.apiKeys.enabled;
    const owner = bindToKeys ? (key?.digest ?? null) : null;
    await this.checkParticipantLimit(dto.name, owner);
    const saved = await this.store.register(
      {
        name: dto.name,
        transport: dto.transport,
        endpoint: dto.transport === 'http' ? (dto.endpoint ?? null) : null,
        host: dto.transport === 'tcp' ? (dto.host ?? null) : null,
        port: dto.transport === 'tcp' ? (dto.port ?? null) : null,
        publish: dto.publish === true,
        actions: dto.actions.map((a) => ({ name: a.name, modes: [...new Set(a.modes)] })),
        callHeaders: headers.headers,
        ownerKeyDigest: owner,
      },
      bindToKeys,
    );
    if (!saved) {
      throw new ApiError(403, ErrorCode.FORBIDDEN, `participant name ${dto.name} belongs to another API key; an operator can release it (POST /admin/participants/${dto.name}/release)`, {
        field: 'name',
      });
    }
    const registered = this.changed(saved);
    return { ...toView(registered), signingSecret: registered.signing.secret };
  }

  /**
   * MAX_PARTICIPANTS_PER_KEY: a new name past it is refused; an update of a name already
   * registered never is. Counted before the insert, so two new names racing from one key may
   * pass it by one each: a bound against runaway growth, not an exact quota.
   */
  private async checkParticipantLimit(name: string, owner: Buffer | null): Promise<void> {
    if (await this.find(name)) return;
    const limit = this.config.env.MAX_PARTICIPANTS_PER_KEY;
    if ((await this.store.countOwnedBy(owner)) >= limit) {
      throw new ApiError(403, ErrorCode.PARTICIPANT_LIMIT, `this key already owns ${limit} participants (MAX_PARTICIPANTS_PER_KEY); delete one first`, {
        field: 'name',
      });
    }
  }

  /**
   * One page of participants in name order (case-insensitive); `cursor` is the `nextCursor` of
   * the previous page.
   */
  async page(limit: number, cursor: string | undefined): Promise<ParticipantPage> {
    const after = cursor === undefined ? null : decodeParticipantCursor(cursor);
    // One more than asked tells whether a next page exists without a count.
    const records = await this.store.page(after, limit + 1);
    const items = records.slice(0, limit).map(toView);
    const last = records.length > limit ? records[limit - 1] : null;
    return { items, nextCursor: last ? encodeParticipantCursor(last.name) : null };
  }

  /**
   * Deletes a participant: only the key that owns its name may (admin keys any), and not while
   * a transaction that is not finished has a branch on it (409 PARTICIPANT_IN_USE).
   */
  async delete(name: string, key: ApiKey | undefined): Promise<void> {
    const found = await this.store.find(name);
    if (!found) throw notRegistered(name);
    const isAdmin = !key || key.roles.has('admin');
    if (this.config.apiKeys.enabled && !isAdmin && found.ownerKeyDigest !== null && !(key && found.ownerKeyDigest.equals(key.digest))) {
      throw new ApiError(403, ErrorCode.FORBIDDEN, `participant name ${found.name} belongs to another API key`, { field: 'name' });
    }
    const outcome = await this.store.delete(found.name);
    if (outcome === 'missing') throw notRegistered(name);
    if (outcome === 'in_use') {
      throw new ApiError(409, ErrorCode.PARTICIPANT_IN_USE, `participant ${found.name} has branches in transactions that are not finished; delete it once they are`);
    }
    this.cache.delete(keyOf(found.name));
    this.bus.publish({ kind: 'participant', name: found.name });
    this.logger.log(`participant ${found.name} deleted`);
  }

  /** Every participant, each with this instance's gate (`load`) as it is now. */
  async listForAdmin(): Promise<ParticipantAdminView[]> {
    const records = await this.store.list();
    return records.map((record) => this.adminView(record, this.gates.snapshotOf(record.name)));
  }

  /**
   * An operator's ceiling on the calls each instance has in flight to one participant (null: back
   * to PARTICIPANT_MAX_IN_FLIGHT). Written to Postgres, applied to this instance's gate at once,
   * and announced on the bus like any change of a participant: every other instance drops its
   * cached record and, if it has a gate for the participant, re-reads it and applies it (refreshGate).
   */
  async setLimits(name: string, maxInFlight: number | null): Promise<ParticipantAdminView> {
    const saved = await this.store.setMaxInFlight(name, maxInFlight);
    if (!saved) throw notRegistered(name);
    this.applyLimits(saved);
    this.changed(saved);
    this.logger.log(
      maxInFlight === null
        ? `participant ${saved.name}: in-flight ceiling cleared by an operator (PARTICIPANT_MAX_IN_FLIGHT ${this.config.env.PARTICIPANT_MAX_IN_FLIGHT} applies)`
        : `participant ${saved.name}: at most ${maxInFlight} calls in flight per instance, set by an operator`,
    );
    return this.adminView(saved);
  }

  /** A new secret for one participant; the old one is still signed with for `overlapMs` (0: revoked now). */
  async rotateSecret(name: string, overlapMs: number): Promise<SecretRotationView> {
    const saved = await this.store.rotateSecret(name, overlapMs);
    if (!saved) throw notRegistered(name);
    const registered = this.changed(saved);
    this.logger.log(`signing secret of ${name} rotated to generation ${saved.secretGeneration}${overlapMs > 0 ? `; the previous one is signed with for ${overlapMs} ms more` : '; the previous one is revoked'}`);
    return { ...this.adminView(saved), signingSecret: registered.signing.secret };
  }

  /** Frees a name from its key (and revokes its secret), so another key may register it. */
  async release(name: string): Promise<ParticipantAdminView> {
    const saved = await this.store.release(name);
    if (!saved) throw notRegistered(name);
    this.changed(saved);
    this.logger.log(`participant name ${name} released: the next key to register it owns it`);
    return this.adminView(saved);
  }

  async find(name: string): Promise<RegisteredParticipant | null> {
    const cached = this.cache.get(keyOf(name));
    if (cached) return cached;
    const found = await this.store.find(name);
    return found ? this.remember(found) : null;
  }

  /** The participant of a branch, checked to expose `action` in `mode`; UnresolvedParticipantError otherwise. */
  async resolve(name: string, action: string, mode: Mode, fieldPrefix: string): Promise<RegisteredParticipant> {
    const field = (key: string) => (fieldPrefix ? `${fieldPrefix}.${key}` : key);
    const participant = await this.find(name);
    if (!participant) {
      throw new UnresolvedParticipantError(ErrorCode.UNKNOWN_PARTICIPANT, field('participant'), `participant ${name} is not registered`);
    }
    const declared = participant.actions.find((a) => a.name === action);
    if (!declared || !declared.modes.includes(mode)) {
      throw new UnresolvedParticipantError(ErrorCode.UNKNOWN_ACTION, field('action'), `participant ${name} has no action ${action} for mode ${mode}`);
    }
    return participant;
  }

  /** This instance's gate for the participant, if it has one, takes the record's ceiling now rather than at its next call. */
  private applyLimits(record: ParticipantRecord): void {
    if (this.gates.snapshotOf(record.name)) this.gates.gate(record.name, record.maxInFlight);
  }

  /**
   * Another instance changed a participant (or this one did): a gate this instance has for it
   * re-reads the record, so an operator's new ceiling holds here without waiting for a call.
   */
  private async refreshGate(name: string): Promise<void> {
    if (!this.gates.snapshotOf(name)) return;
    try {
      const record = await this.find(name);
      if (record) this.applyLimits(record);
    } catch (error) {
      // The next call re-reads it anyway (the cache entry is gone).
      this.logger.warn(`could not re-read participant ${name} after a change: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Caches a record just written here and tells the other instances to re-read it. */
  private changed(record: ParticipantRecord): RegisteredParticipant {
    const registered = this.remember(record);
    this.bus.publish({ kind: 'participant', name: record.name });
    return registered;
  }

  private remember(record: ParticipantRecord): RegisteredParticipant {
    if (!this.coordinatorSecret) throw new Error('the participant registry is used before its signing secret is loaded');
    const registered: RegisteredParticipant = { ...record, signing: ParticipantSigning.of(this.coordinatorSecret, record) };
    this.cache.set(keyOf(record.name), registered);
    return registered;
  }

  private adminView(record: ParticipantRecord, gate: GateSnapshot | null = this.gates.snapshotOf(record.name)): ParticipantAdminView {
    const stillSigned = record.previousSecretUntil !== null && this.clock.msUntil(record.previousSecretUntil) > 0;
    return {
      ...toView(record),
      owner: record.ownerKeyDigest ? (this.config.apiKeys.idOfDigest(record.ownerKeyDigest) ?? 'unconfigured key') : null,
      secretGeneration: record.secretGeneration,
      previousSecretValidUntil: stillSigned ? record.previousSecretUntil!.toISOString() : null,
      callHeaderNames: Object.keys(record.callHeaders).sort(),
      maxInFlight: record.maxInFlight,
      load: participantLoadView(gate),
    };
  }
}

/** A page cursor: the lower-case name the page ended at, opaque to clients. */
export const encodeParticipantCursor = (name: string): string => Buffer.from(keyOf(name), 'utf8').toString('base64url');

function decodeParticipantCursor(cursor: string): string {
  const name = /^[A-Za-z0-9_-]{1,100}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!/^[a-z0-9_.:-]{1,64}$/.test(name)) {
    throw new ApiError(400, ErrorCode.VALIDATION_FAILED, 'cursor is not a cursor this API returned', { field: 'cursor' });
  }
  return name;
}

function notRegistered(name: string): ApiError {
  return new ApiError(404, ErrorCode.NOT_FOUND, `participant ${name} is not registered`);
}

function toView(p: ParticipantRecord): ParticipantView {
  return {
    name: p.name,
    transport: p.transport,
    endpoint: p.endpoint,
    host: p.host,
    port: p.port,
    publish: p.publish,
    actions: p.actions,
    updatedAt: new Date(p.updatedAt).toISOString(),
  };
}
