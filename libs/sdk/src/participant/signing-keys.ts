import { Inject, Injectable } from '@nestjs/common';
import { parseSigningSecret } from '@nest-dtx/protocol';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

/** What taking a registration's secret changed. */
export type SecretUpdate = 'first' | 'unchanged' | 'rotated';

/**
 * This participant's signing key (PROTOCOL.md 5.5): the `signingSecret` option until the
 * coordinator has answered a registration, then only the newest secret the coordinator gave.
 * One key, never a list: while an operator rotates, the coordinator signs with the old and the
 * new secret side by side, so the participant needs only one of them; and once the old one is
 * revoked the coordinator stops signing with it, so a participant that held on to it would keep
 * accepting calls signed with a secret that may have leaked.
 */
@Injectable()
export class SigningKeys {
  private readonly configured: Buffer | null;
  private fromCoordinator: Buffer | null = null;

  constructor(@Inject(PARTICIPANT_OPTIONS) options: Pick<ParticipantModuleOptions, 'signingSecret'>) {
    // Validated at start-up (checkParticipantOptions), so this does not throw in a running app.
    this.configured = options.signingSecret === undefined ? null : parseSigningSecret(options.signingSecret);
  }

  /** The keys a call may be signed with now: none before any secret is known. */
  current(): readonly Buffer[] {
    const key = this.fromCoordinator ?? this.configured;
    return key ? [key] : [];
  }

  /** Whether the coordinator has given a secret yet. */
  hasCoordinatorSecret(): boolean {
    return this.fromCoordinator !== null;
  }

  /**
   * Takes the secret of a registration answer, replacing any other. Throws one line (without
   * the secret) when it is not a `whsec_` secret; the key held so far then stays.
   */
  acceptFromCoordinator(secret: string): SecretUpdate {
    const key = parseSigningSecret(secret);
    const before = this.fromCoordinator;
    this.fromCoordinator = key;
    if (!before) return 'first';
    return before.equals(key) ? 'unchanged' : 'rotated';
  }
}
