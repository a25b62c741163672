/** Stable error codes of the REST API (PROTOCOL.md 3). Clients match on these, never on messages. */
export const ErrorCode = {
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  INVALID_JSON: 'INVALID_JSON',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  NOT_FOUND: 'NOT_FOUND',
  TX_NOT_FOUND: 'TX_NOT_FOUND',
  GID_CONFLICT: 'GID_CONFLICT',
  UNKNOWN_PARTICIPANT: 'UNKNOWN_PARTICIPANT',
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  WRONG_MODE: 'WRONG_MODE',
  MODE_NOT_SUPPORTED: 'MODE_NOT_SUPPORTED',
  TX_NOT_ACTIVE: 'TX_NOT_ACTIVE',
  TX_ALREADY_DECIDED: 'TX_ALREADY_DECIDED',
  CANNOT_COMMIT: 'CANNOT_COMMIT',
  BRANCH_FAILED: 'BRANCH_FAILED',
  BRANCH_UNKNOWN: 'BRANCH_UNKNOWN',
  BRANCH_CONFLICT: 'BRANCH_CONFLICT',
  /** No API key, an unknown key, or a malformed Authorization header (401). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** A valid API key without the role the route requires (403). */
  FORBIDDEN: 'FORBIDDEN',
  /**
   * Too many client API requests for this key (or address) in the current minute, or too many
   * requests refused 401 from this address (429, Retry-After).
   */
  RATE_LIMITED: 'RATE_LIMITED',
  /**
   * A state-changing request sent by a page of another site (Sec-Fetch-Site cross-site or
   * same-site, or an Origin other than the coordinator's own) (403). Browsers only: requests
   * without these headers (curl, the SDK, servers) are not concerned.
   */
  CROSS_SITE_REQUEST: 'CROSS_SITE_REQUEST',
  /** A request body whose Content-Type is not application/json (415). */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** The path exists, but not for this method (405, with an Allow header listing those it has). */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** A participant registration names an endpoint or host (or a port of it) outside PARTICIPANT_HOSTS (403). */
  PARTICIPANT_HOST_NOT_ALLOWED: 'PARTICIPANT_HOST_NOT_ALLOWED',
  /**
   * A participant registration names an IP address the egress policy refuses (403, field
   * `endpoint` or `host`): link-local (cloud metadata), unspecified, multicast, broadcast or
   * reserved in any spelling, or a loopback, private or public address PARTICIPANT_NETWORKS
   * does not allow.
   */
  PARTICIPANT_ADDRESS_NOT_ALLOWED: 'PARTICIPANT_ADDRESS_NOT_ALLOWED',
  /**
   * A participant registration names a broker transport (rabbitmq, nats) this coordinator has
   * no connection for: it was started without RABBITMQ_URL or NATS_URL (400, field `transport`).
   */
  TRANSPORT_NOT_CONFIGURED: 'TRANSPORT_NOT_CONFIGURED',
  NOT_READY: 'NOT_READY',
  /**
   * The coordinator lost its Postgres connection while answering (503, Retry-After). Nothing was
   * decided that is not durable: send the same request again (begin with the same gid).
   */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /**
   * The coordinator has more participant calls waiting than it admits new work for (a
   * participant the begin names, or the instance as a whole): the begin was refused before
   * anything was written (503, Retry-After). Send the same request again after Retry-After.
   */
  OVERLOADED: 'OVERLOADED',
  /** An interactive transaction already holds MAX_BRANCHES_PER_TRANSACTION branches: no more may be added (409). */
  TOO_MANY_BRANCHES: 'TOO_MANY_BRANCHES',
  /** The API key already owns MAX_PARTICIPANTS_PER_KEY participant names: a new name is refused (403). */
  PARTICIPANT_LIMIT: 'PARTICIPANT_LIMIT',
  /** A participant cannot be deleted while a transaction that is not finished has a branch (or msg check) on it (409). */
  PARTICIPANT_IN_USE: 'PARTICIPANT_IN_USE',
  /**
   * A workflow step recorded again under its stepId with another kind, participant or action
   * (409): the workflow did not replay the way it ran before, it is not deterministic (PROTOCOL.md 3.7).
   */
  STEP_MISMATCH: 'STEP_MISMATCH',
  /** A reported outcome (PROTOCOL.md 3.6) for a phase the branch is not waiting on now (409). */
  PHASE_NOT_IN_PROGRESS: 'PHASE_NOT_IN_PROGRESS',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The body of every error answer. */
export interface ErrorBody {
  statusCode: number;
  error: ErrorCode;
  message: string;
  /** The offending field, for validation errors. */
  field?: string;
  [extra: string]: unknown;
}
