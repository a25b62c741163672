import { setTimeout as delay } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Mode, ParticipantRegistrationView } from '@nest-dtx/protocol';
import { TransactionClient } from '../client/transaction-client.js';
import { ParticipantExplorer } from './participant.explorer.js';
import { registrationAddress } from './participant-address.js';
import { PARTICIPANT_OPTIONS, REGISTRATION_DEFAULTS, type ParticipantModuleOptions } from './participant.options.js';
import {
  classifyRegistrationFailure,
  RefreshGate,
  REFRESH_AFTER_REFUSAL_MIN_MS,
  REFUSED_RETRY_MS,
  transientRetryMs,
} from './registration-policy.js';
import { ParticipantSchema } from './participant-schema.js';
import { SigningKeys } from './signing-keys.js';
import { WorkflowRegistry } from '../workflow/workflow.registry.js';

/** Resolves when `work` does or the app shuts down, whichever comes first. */
function untilAborted(work: Promise<void>, signal: AbortSignal): Promise<void> {
  return Promise.race([work, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
}

/** Waits, or stops waiting when the app shuts down. `ref: false` lets a process that is otherwise done exit. */
async function sleep(ms: number, signal: AbortSignal, ref: boolean): Promise<void> {
  try {
    await delay(ms, undefined, { signal, ref });
  } catch {
    // aborted: shutting down
  }
}

type Attempt = 'ok' | 'refused' | 'transient';

/**
 * Where the participant's registration stands: `disabled` (`register: false`), `pending` (no
 * registration has succeeded yet), `registered` (the last one the coordinator answered was
 * accepted), or `refused` (the coordinator refused it since the last success: a name another
 * key owns, a wrong key). `lastError` is the last failure's line, kept until a success.
 */
export interface ParticipantRegistrationState {
  state: 'disabled' | 'pending' | 'registered' | 'refused';
  /** When a registration last succeeded. */
  registeredAt: Date | null;
  lastError: string | null;
}

/**
 * Registers the participant and its actions with the coordinator (PROTOCOL.md 4) and keeps its
 * signing secret (SigningKeys) as new as the coordinator's. Not before the SDK's tables are
 * found in its database (ParticipantSchema): a participant without them could only fail every
 * call. At start-up it retries with backoff
 * while the coordinator is not reachable; start-up waits for the first success up to
 * `registerWaitMs`, then the retries go on in the background. After that it registers again
 * every `registrationRefreshMs`, and when a call was refused for a signature this participant
 * could not match (the coordinator may have rotated the secret), at most every 10 s. A refusal
 * by the coordinator (a name another key owns, a wrong key) is logged once and retried slowly:
 * only an operator can fix it, and the app keeps serving with the secret it has.
 */
@Injectable()
export class ParticipantRegistration implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DtxParticipant');
  private readonly stopping = new AbortController();
  private readonly afterRefusal = new RefreshGate(REFRESH_AFTER_REFUSAL_MIN_MS);
  private readonly client: TransactionClient;
  /** The registration under way, so that two never overlap. */
  private inFlight: Promise<void> | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private registered = false;
  /** The coordinator refused since the last success (said once, not per retry). */
  private refused = false;
  private warnedNoSecret = false;
  private registeredAt: Date | null = null;
  private lastError: string | null = null;

  constructor(
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
    private readonly explorer: ParticipantExplorer,
    private readonly keys: SigningKeys,
    private readonly schema: ParticipantSchema,
    private readonly workflows: WorkflowRegistry,
  ) {
    this.client = new TransactionClient({ coordinatorUrl: options.coordinatorUrl, apiKey: options.apiKey, timeoutMs: 10_000 });
  }

  private get enabled(): boolean {
    return this.options.register !== false;
  }

  async onApplicationBootstrap(): Promise<void> {
    // Under schemaCheck `fail`, a missing schema rejects here: start-up fails, nothing registered.
    await this.schema.checkedAtStartUp();
    if (!this.enabled) return;
    const first = this.exclusive(() => this.registerUntilDone());
    // Under `warn`, with the schema missing: registered in the background once it is there (ParticipantSchema said so).
    if (this.schema.missing) return;
    const waitMs = this.options.registerWaitMs ?? REGISTRATION_DEFAULTS.waitMs;
    const inTime = await Promise.race([first.then(() => true), sleep(waitMs, this.stopping.signal, true).then(() => false)]);
    if (inTime || this.stopping.signal.aborted) return;
    this.logger.warn(
      this.refused
        ? `not registered after ${waitMs} ms: the coordinator refused (see above); still trying in the background`
        : `coordinator not reachable after ${waitMs} ms; still trying in the background`,
    );
  }

  /** Where the registration stands (see ParticipantRegistrationState); what DtxParticipantHealthIndicator reports. */
  status(): ParticipantRegistrationState {
    const state = !this.enabled ? 'disabled' : this.refused ? 'refused' : this.registered ? 'registered' : 'pending';
    return { state, registeredAt: this.registeredAt, lastError: this.lastError };
  }

  onApplicationShutdown(): void {
    this.stopping.abort();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  /**
   * A call was refused SIGNATURE_INVALID or SIGNATURE_NO_SECRET: the coordinator may hold a
   * newer secret than this participant. Registers again in the background unless a registration
   * is under way or one was triggered this way less than 10 s ago (anyone can send such calls).
   */
  refreshAfterRefusal(): void {
    if (!this.enabled || this.stopping.signal.aborted || this.inFlight || !this.afterRefusal.tryPass()) return;
    void this.exclusive(async () => {
      await this.attempt(1);
    });
  }

  private exclusive(work: () => Promise<void>): Promise<void> {
    const run = work().finally(() => {
      this.inFlight = null;
    });
    this.inFlight = run;
    return run;
  }

  private async registerUntilDone(): Promise<void> {
    await untilAborted(this.schema.present, this.stopping.signal);
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      const outcome = await this.attempt(attempt);
      if (outcome === 'ok') {
        this.scheduleRefresh();
        return;
      }
      await sleep(outcome === 'refused' ? REFUSED_RETRY_MS : transientRetryMs(attempt), this.stopping.signal, false);
    }
  }

  private scheduleRefresh(): void {
    const every = this.options.registrationRefreshMs ?? REGISTRATION_DEFAULTS.refreshMs;
    if (every === 0 || this.stopping.signal.aborted) return;
    const tick = (): void => {
      this.refreshTimer = null;
      if (this.stopping.signal.aborted) return;
      if (this.inFlight) {
        this.scheduleRefresh();
        return;
      }
      void this.exclusive(async () => {
        await this.attempt(1);
      }).finally(() => this.scheduleRefresh());
    };
    this.refreshTimer = setTimeout(tick, every).unref();
  }

  /** One registration; says what it came to (within the logging rules above), never throws. */
  private async attempt(attempt: number): Promise<Attempt> {
    let answer: ParticipantRegistrationView;
    try {
      const request = {
        name: this.options.name,
        ...registrationAddress(this.options),
        actions: this.actions(),
        ...(this.options.callHeaders ? { headers: this.options.callHeaders } : {}),
      };
      answer = await this.client.registerParticipant(request);
    } catch (error) {
      const failure = classifyRegistrationFailure(error, this.options.name);
      this.lastError = failure.line;
      if (failure.kind === 'refused') {
        if (!this.refused) this.logger.error(failure.line);
        this.refused = true;
      } else if (attempt === 1 || attempt % 10 === 0) {
        this.logger.warn(`registration attempt ${attempt} failed: ${failure.line}`);
      }
      return failure.kind;
    }
    this.takeSecret(answer);
    if (!this.registered || this.refused) this.logger.log(`registered as ${this.options.name} at ${this.where()} with ${this.options.coordinatorUrl}`);
    this.registered = true;
    this.refused = false;
    this.registeredAt = new Date();
    this.lastError = null;
    return 'ok';
  }

  private takeSecret(answer: ParticipantRegistrationView): void {
    const secret: unknown = (answer as Partial<ParticipantRegistrationView> | null)?.signingSecret;
    if (typeof secret !== 'string') {
      if (!this.warnedNoSecret) {
        this.logger.warn(
          'the coordinator answered the registration without a signingSecret (PROTOCOL.md 4, 5.5): ' +
            (this.keys.current().length > 0 ? 'calls are verified with the signingSecret option' : 'every call is refused until it sends one'),
        );
      }
      this.warnedNoSecret = true;
      return;
    }
    try {
      if (this.keys.acceptFromCoordinator(secret) === 'rotated') {
        this.logger.log('the coordinator rotated the signing secret: calls are verified with the new one only');
      }
    } catch (error) {
      this.logger.error(`the coordinator's registration answer holds an unusable signingSecret (${(error as Error).message}); keeping the key held so far`);
    }
  }

  private where(): string {
    const address = registrationAddress(this.options);
    return address.endpoint ?? (address.host ? `tcp://${address.host}:${address.port}` : address.transport);
  }

  private actions(): { name: string; modes: Mode[] }[] {
    const byName = new Map<string, Set<Mode>>();
    for (const action of this.explorer.list()) {
      const modes = byName.get(action.name) ?? new Set<Mode>();
      modes.add(action.mode);
      byName.set(action.name, modes);
    }
    // A hosted workflow is an action of its name with mode workflow (PROTOCOL.md 3.7): begins name it, resumes call it.
    for (const name of this.workflows.names()) byName.set(name, (byName.get(name) ?? new Set<Mode>()).add('workflow'));
    return [...byName].map(([name, modes]) => ({ name, modes: [...modes] }));
  }
}
