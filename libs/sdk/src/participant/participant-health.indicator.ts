import { Inject, Injectable } from '@nestjs/common';
import { CoordinatorError } from '../client/coordinator-error.js';
import { TransactionClient } from '../client/transaction-client.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';
import { healthProblem, type CoordinatorProbe } from './participant-health.js';
import { ParticipantSchema } from './participant-schema.js';
import { ParticipantRegistration } from './registration.service.js';

/** How long a health check waits for the coordinator by default. */
export const HEALTH_CHECK_TIMEOUT_MS = 3_000;

/**
 * A health indicator's result, in the shape of @nestjs/terminus's HealthIndicatorResult
 * (declared here so that the SDK needs nothing of Terminus at run time or in its typings).
 */
export type DtxHealthIndicatorResult<Key extends string = string> = Record<
  Key,
  { status: 'up' | 'down'; participant: string; [detail: string]: unknown }
>;

/**
 * A Terminus health indicator for a participant: `up` when the coordinator answers and lists
 * this participant and the participant's own registration succeeded (with `register: false`:
 * when the coordinator answers and lists it), `down` with a `reason` otherwise (the SDK's
 * tables missing from its database, coordinator unreachable or failing, registration pending
 * or refused, name not in the registry). Each check asks the coordinator (`GET
 * /v1/participants`, with the `apiKey` option), waiting at most `timeoutMs` (default 3 s); the
 * database only while its schema is known to be missing (to see it come back).
 *
 * Provided and exported by DtxParticipantModule. It needs nothing of @nestjs/terminus (an
 * optional peer of the SDK): its result is what Terminus's HealthCheckService takes from an
 * indicator function, and a `down` result makes `check` throw a 503 (ServiceUnavailableException)
 * without this indicator throwing anything:
 *
 * ```ts
 * @Module({ imports: [TerminusModule, DtxParticipantModule.forRoot({ ... })], controllers: [HealthController] })
 * class AppModule {}
 *
 * @Controller('health')
 * class HealthController {
 *   constructor(private readonly health: HealthCheckService, private readonly dtx: DtxParticipantHealthIndicator) {}
 *
 *   @Get()
 *   @HealthCheck()
 *   check() {
 *     return this.health.check([() => this.dtx.isHealthy('dtx')]);
 *   }
 * }
 * ```
 *
 * The controller must be in a module that sees the indicator: the one importing
 * DtxParticipantModule, or any module when it is imported with `isGlobal: true`.
 */
@Injectable()
export class DtxParticipantHealthIndicator {
  constructor(
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
    private readonly registration: ParticipantRegistration,
    private readonly schema: ParticipantSchema,
  ) {}

  async isHealthy<Key extends string = 'dtx'>(key: Key = 'dtx' as Key, { timeoutMs = HEALTH_CHECK_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<DtxHealthIndicatorResult<Key>> {
    const name = this.options.name;
    // The SDK's tables missing first: nothing else matters until they are there.
    const problem = (await this.schema.current()) ?? healthProblem(this.registration.status(), await this.probe(timeoutMs), name);
    const detail = problem === null ? { status: 'up' as const, participant: name } : { status: 'down' as const, participant: name, reason: problem };
    return { [key]: detail } as DtxHealthIndicatorResult<Key>;
  }

  private async probe(timeoutMs: number): Promise<CoordinatorProbe> {
    const client = new TransactionClient({ coordinatorUrl: this.options.coordinatorUrl, apiKey: this.options.apiKey, timeoutMs, retries: 0 });
    try {
      const participants = await client.listParticipants();
      return { ok: true, listed: participants.some((participant) => participant.name === this.options.name) };
    } catch (error) {
      if (!(error instanceof CoordinatorError)) return { ok: false, reason: `the coordinator's answer was not understood (${String(error)})` };
      // statusCode 0: no answer at all; the message says where it was asked.
      return { ok: false, reason: error.statusCode === 0 ? error.message : `the coordinator answered ${error.statusCode} ${error.code}` };
    }
  }
}
