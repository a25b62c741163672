import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type Json, type TransactionView } from '@nest-dtx/protocol';
import { CoordinatorError } from '../client/coordinator-error.js';
import { TransactionClient } from '../client/transaction-client.js';
import type { PhaseCallIdentity } from './participant.explorer.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

/** What came of a report (BranchOutcomes.report). */
export type ReportedOutcome =
  /** The coordinator recorded it (`200`/`201`; a repeat of a report it already has is `200` too): the view after it. */
  | { status: 'recorded'; transaction: TransactionView }
  /**
   * The phase was not in progress (`409 PHASE_NOT_IN_PROGRESS`): its outcome was already
   * settled (a repeat of the call got the final answer first, or the transaction moved on: its
   * deadline passed, it was rolled back). Nothing to do: the coordinator goes by what it has.
   */
  | { status: 'already_settled'; message: string };

/** How a report is sent again when it got no usable answer. */
export interface OutcomeReportRetries {
  /** Sends in all, the first one included. */
  attempts: number;
  /** The pause after the first failure; it doubles after each (with up to a quarter more, so reporters spread out). */
  firstDelayMs: number;
  /** The longest pause, a Retry-After included. */
  maxDelayMs: number;
}

/** The default: 5 sends over about 4 s, longer when the coordinator says Retry-After (up to 10 s a pause). */
export const OUTCOME_REPORT_RETRIES: Readonly<OutcomeReportRetries> = { attempts: 5, firstDelayMs: 250, maxDelayMs: 10_000 };

/**
 * Whether a failed report is worth sending again: no answer at all, a coordinator (or gateway)
 * error, or one refused for load (429). A report is idempotent (PROTOCOL.md 3.6: "once: a
 * repeat is 200"), so sending it again is safe.
 */
function transient(error: CoordinatorError): boolean {
  return error.statusCode === 0 || error.statusCode >= 500 || error.statusCode === 429;
}

/**
 * Sends one report through `client`, again after a transient failure (see transient) up to
 * `retries.attempts` sends, pausing as the answer's Retry-After says or else with a doubling
 * backoff. `409 PHASE_NOT_IN_PROGRESS` is an answer, not an error: `already_settled`. Any other
 * error (400 bad input, 401/403 a key that does not own the participant, 404 an unknown
 * transaction), or the last transient one, is thrown as the CoordinatorError it was.
 */
export async function reportOutcomeRetrying(
  client: Pick<TransactionClient, 'reportOutcome'>,
  call: PhaseCallIdentity,
  outcome: 'ok' | 'failed',
  result: Json | undefined,
  retries: Readonly<OutcomeReportRetries> = OUTCOME_REPORT_RETRIES,
): Promise<ReportedOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const transaction = await client.reportOutcome(call.gid, call.branchId, { phase: call.phase, outcome, ...(result === undefined ? {} : { result }) });
      return { status: 'recorded', transaction };
    } catch (error) {
      if (!(error instanceof CoordinatorError)) throw error;
      if (error.code === ErrorCode.PHASE_NOT_IN_PROGRESS) return { status: 'already_settled', message: error.message };
      if (!transient(error) || attempt >= retries.attempts) throw error;
      const backoffMs = retries.firstDelayMs * 2 ** (attempt - 1) * (1 + Math.random() / 4);
      await sleep(Math.min(error.retryAfterMs ?? backoffMs, retries.maxDelayMs));
    }
  }
}

/**
 * Reports the final answer of a phase call this participant answered `ongoing()` (PROTOCOL.md
 * 3.6), so that the coordinator need not wait for its next repeat of the call: once the approval
 * came, the batch finished, the provider called back. Keep the call's identity when answering
 * ongoing (`context.call`), then `report(call, 'ok', result)` or `report(call, 'failed', details)`.
 * It goes to the coordinator the participant registers with, with its API key (the key that owns
 * the participant's name, which the coordinator requires).
 *
 * The report has the effect the same answer to that call would have had: make it agree with what
 * the business method will answer when the call is repeated anyway (a report may be lost; the
 * repeat is what guarantees an outcome). The barrier is not involved: the method's next run
 * still records its answer there.
 *
 * Provided (and exported) by DtxParticipantModule.
 */
@Injectable()
export class BranchOutcomes {
  private readonly client: TransactionClient;

  constructor(@Inject(PARTICIPANT_OPTIONS) options: Pick<ParticipantModuleOptions, 'coordinatorUrl' | 'apiKey'>) {
    // Retried here, with the report's own rules (5xx too, and 409 PHASE_NOT_IN_PROGRESS read as
    // an answer), not inside the client.
    this.client = new TransactionClient({ coordinatorUrl: options.coordinatorUrl, apiKey: options.apiKey, timeoutMs: 10_000, retries: 0, maxBackPressureWaitMs: 0 });
  }

  /**
   * Reports `outcome` of `call` (`ok`: as a 2xx answer with `result` as its body; `failed`: as a
   * 409, `result` kept as the branch's lastError). Resolves with what came of it; throws a
   * CoordinatorError when the coordinator refused it, or gave no usable answer after the retries.
   */
  report(call: PhaseCallIdentity, outcome: 'ok' | 'failed', result?: Json): Promise<ReportedOutcome> {
    return reportOutcomeRetrying(this.client, call, outcome, result);
  }
}
