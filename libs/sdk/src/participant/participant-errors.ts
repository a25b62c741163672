import { SignatureError } from '@nest-dtx/protocol';

/**
 * Stable codes of the participant's own error answers. A caller (the coordinator, an operator
 * reading its `lastError`, a test) matches on these, never on messages. The status of each
 * code is fixed in one place (PARTICIPANT_ERROR_STATUS), so a thrower names the code only.
 */
export const ParticipantErrorCode = {
  ...SignatureError,
  /** Signed, but the call itself is not a phase call this participant serves (PROTOCOL.md 5.1). */
  INVALID_PHASE_CALL: 'INVALID_PHASE_CALL',
  /** The body is not JSON. */
  INVALID_JSON: 'INVALID_JSON',
  /** The body is over the app's body-parser limit. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** Not `application/json` in UTF-8, or a content encoding the parser does not know. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /**
   * Any other request the HTTP server refused before the SDK's route ran (aborted, bad
   * percent-encoding), and a call nested too deeply to serialise for verification.
   */
  BAD_REQUEST: 'BAD_REQUEST',
  /** The business refused phase 1 (PROTOCOL.md 5.1: 409). */
  BUSINESS_FAILURE: 'BUSINESS_FAILURE',
  /**
   * The SDK's tables are not in the participant's database (its migration has not run, or a
   * table was dropped): 503, transient, the coordinator retries until they are there. The
   * message names what is missing and the migration that makes it.
   */
  DTX_SCHEMA_MISSING: 'DTX_SCHEMA_MISSING',
  /**
   * An XaAction or AtAction answered ongoing(), which they cannot (their phase 1 ends in the
   * call): a bug of the participant, 500, transient; nothing it wrote was kept.
   */
  ONGOING_NOT_SUPPORTED: 'ONGOING_NOT_SUPPORTED',
  /** Anything unexpected (the database went away): transient, the coordinator retries. */
  INTERNAL: 'INTERNAL',
} as const;
export type ParticipantErrorCode = (typeof ParticipantErrorCode)[keyof typeof ParticipantErrorCode];

export const PARTICIPANT_ERROR_STATUS: Record<ParticipantErrorCode, number> = {
  [SignatureError.MISSING]: 401,
  [SignatureError.MALFORMED]: 401,
  [SignatureError.EXPIRED]: 401,
  [SignatureError.INVALID]: 401,
  [SignatureError.NO_SECRET]: 401,
  INVALID_PHASE_CALL: 400,
  INVALID_JSON: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BAD_REQUEST: 400,
  BUSINESS_FAILURE: 409,
  DTX_SCHEMA_MISSING: 503,
  ONGOING_NOT_SUPPORTED: 500,
  INTERNAL: 500,
};

/** The body of every error answer of the SDK's routes, HTTP and message transports alike. */
export interface ParticipantErrorBody {
  statusCode: number;
  error: ParticipantErrorCode;
  message: string;
  [extra: string]: unknown;
}

export function participantError(code: ParticipantErrorCode, message: string, extra: Record<string, unknown> = {}): ParticipantErrorBody {
  return { statusCode: PARTICIPANT_ERROR_STATUS[code], error: code, message, ...extra };
}

/**
 * An error of the HTTP server before the SDK's route ran, as an SDK answer; null for what is
 * not a refused request (a 5xx is a server fault and stays with Nest, which logs it). Express's
 * body-parser errors carry `type` and `status` (http-errors); Express's router throws a URIError
 * with status 400 for bad percent-encoding. Messages are fixed: the parser's own may quote the body.
 */
export function requestErrorBody(error: unknown): ParticipantErrorBody | null {
  if (typeof error !== 'object' || error === null) return null;
  const fields = error as { status?: unknown; statusCode?: unknown; type?: unknown };
  const status = typeof fields.status === 'number' ? fields.status : typeof fields.statusCode === 'number' ? fields.statusCode : undefined;
  if (status === undefined || status < 400 || status >= 500) return null;
  switch (fields.type) {
    case 'entity.parse.failed':
      return participantError(ParticipantErrorCode.INVALID_JSON, 'request body is not valid JSON');
    case 'entity.too.large':
      return participantError(ParticipantErrorCode.PAYLOAD_TOO_LARGE, 'request body is too large');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return participantError(ParticipantErrorCode.UNSUPPORTED_MEDIA_TYPE, 'unsupported body encoding');
    default:
      return { ...participantError(ParticipantErrorCode.BAD_REQUEST, 'bad request'), statusCode: status };
  }
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The paths of the SDK's route `POST {path}/{action}/{phase}`, under whatever global prefix the
 * app set: an error before routing knows only the method and the path.
 */
export function participantRoutePattern(path: string): RegExp {
  const prefix = path.split('/').filter(Boolean).map(escapeRegExp).join('/');
  return new RegExp(`^(?:/.*)?/${prefix}/[^/]+/[^/]+/?$`);
}

/** `application/json`, with no charset or UTF-8: what the coordinator sends, and what the signature covers unambiguously. */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [type, ...parameters] = contentType.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return parameters.every((parameter) => {
    const [name, value] = parameter.split('=').map((part) => part.trim().replace(/^"|"$/g, ''));
    return name !== 'charset' || value === 'utf-8' || value === 'utf8';
  });
}
