import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { SignatureError, SIGNATURE_HEADERS, verifyCall, type PresentedSignatureHeaders } from '@nest-dtx/protocol';
import { signedIdNamesBody } from './phase-call.js';
import { participantError, ParticipantErrorCode, type ParticipantErrorBody } from './participant-errors.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';
import { RefusalLog } from './refusal-log.js';
import { ParticipantRegistration } from './registration.service.js';
import { SigningKeys } from './signing-keys.js';

export type CallCheck = { ok: true; body: unknown } | { ok: false; error: ParticipantErrorBody };

/**
 * The gate every call passes before anything of it is used (PROTOCOL.md 5.4, 5.5), for the HTTP
 * and the message transports alike: the signature over exactly the content that arrived, then
 * that the signed `webhook-id` names the body's own gid, branchId and phase (so a signature
 * cannot be carried over to another branch's body, since the id is part of what is signed).
 * The body handed on is parsed from that same verified content, never taken from elsewhere.
 */
@Injectable()
export class CallVerifier implements OnApplicationShutdown {
  private readonly logger = new Logger('DtxParticipant');
  private readonly refusals = new RefusalLog((line) => this.logger.warn(line));
  private readonly verifying: boolean;

  constructor(
    private readonly keys: SigningKeys,
    private readonly registration: ParticipantRegistration,
    @Inject(PARTICIPANT_OPTIONS) options: ParticipantModuleOptions,
  ) {
    this.verifying = options.verifySignatures !== false;
  }

  onApplicationShutdown(): void {
    this.refusals.close();
  }

  /** `signed`: the call's content as it arrived (the HTTP body's bytes, or a message's data without its headers). */
  check(headers: PresentedSignatureHeaders, signed: string | Buffer): CallCheck {
    if (this.verifying) {
      const verdict = verifyCall(this.keys.current(), headers, signed, Math.floor(Date.now() / 1000));
      if (!verdict.ok) {
        this.refused(verdict.code);
        return { ok: false, error: participantError(verdict.code, verdict.reason) };
      }
    }
    let body: unknown;
    try {
      body = JSON.parse(typeof signed === 'string' ? signed : signed.toString('utf8'));
    } catch {
      return { ok: false, error: participantError(ParticipantErrorCode.INVALID_JSON, 'request body is not valid JSON') };
    }
    if (this.verifying && !signedIdNamesBody(headers[SIGNATURE_HEADERS.id], body)) {
      return { ok: false, error: participantError(ParticipantErrorCode.INVALID_PHASE_CALL, 'webhook-id does not name the body\'s {gid}/{branchId}/{phase}') };
    }
    return { ok: true, body };
  }

  private refused(code: SignatureError): void {
    this.refusals.record(code);
    // A signature none of our keys matches, or no key at all: the coordinator may have rotated
    // the secret (or we have not registered yet). Registering again fetches the current one.
    if (code === SignatureError.INVALID || code === SignatureError.NO_SECRET) this.registration.refreshAfterRefusal();
  }
}
