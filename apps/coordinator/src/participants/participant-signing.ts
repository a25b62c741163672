import { createHmac } from 'node:crypto';
import { formatSigningSecret } from '@nest-dtx/protocol';
import type { ParticipantRecord } from '../store/records.js';

/**
 * Participant secrets are derived, not stored: HMAC-SHA256 of the coordinator's signing
 * secret over the participant's name and secret generation. Every instance holding the same
 * coordinator secret computes the same participant secret, across restarts, without a
 * participant registering again; a rotation (new generation) changes one participant's secret
 * only. The labels keep these keys apart from any other use of the coordinator secret.
 */
export function deriveParticipantKey(coordinatorSecret: Buffer, name: string, generation: number): Buffer {
  return createHmac('sha256', coordinatorSecret).update(`nest-dtx participant signing key\0${name}\0${generation}`).digest();
}

/** The keys the coordinator signs one participant's calls with. */
export class ParticipantSigning {
  private readonly previousUntilMs: number;

  constructor(
    readonly current: Buffer,
    private readonly previous: Buffer | null,
    previousUntil: Date | null,
  ) {
    this.previousUntilMs = previousUntil?.getTime() ?? 0;
  }

  static of(coordinatorSecret: Buffer, record: ParticipantRecord): ParticipantSigning {
    const current = deriveParticipantKey(coordinatorSecret, record.name, record.secretGeneration);
    const previous =
      record.previousSecretGeneration !== null && record.previousSecretUntil !== null
        ? deriveParticipantKey(coordinatorSecret, record.name, record.previousSecretGeneration)
        : null;
    return new ParticipantSigning(current, previous, record.previousSecretUntil);
  }

  /** The current key, and during a rotation window the previous one after it (PROTOCOL.md 5.5). */
  keysAt(nowMs: number): readonly Buffer[] {
    return this.previous !== null && nowMs < this.previousUntilMs ? [this.current, this.previous] : [this.current];
  }

  /** `whsec_…` of the current key: what the registration answer hands the participant. */
  get secret(): string {
    return formatSigningSecret(this.current);
  }
}

/** A participant as the invoker calls it: its registration and the keys its calls are signed with. */
export interface RegisteredParticipant extends ParticipantRecord {
  readonly signing: ParticipantSigning;
}
