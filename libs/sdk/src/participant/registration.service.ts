import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Mode } from '@app/protocol';
import { TransactionClient } from '../client/transaction-client.js';
import { ParticipantExplorer } from './participant.explorer.js';
import { registrationAddress } from './participant-transport.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Registers the participant and its actions with the coordinator at start-up (PROTOCOL.md 4),
 * retrying with backoff while the coordinator is not reachable. Start-up waits for the first
 * success up to `registerWaitMs`, then the retries go on in the background.
 */
@Injectable()
export class ParticipantRegistration implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DtxParticipant');
  private stopped = false;

  constructor(
    @Inject(PARTICIPANT_OPTIONS) private readonly options: ParticipantModuleOptions,
    private readonly explorer: ParticipantExplorer,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.register === false) return;
    const registered = this.registerUntilDone();
    const waitMs = this.options.registerWaitMs ?? 15_000;
    const inTime = await Promise.race([registered.then(() => true), sleep(waitMs).then(() => false)]);
    if (!inTime) this.logger.warn(`coordinator not reachable after ${waitMs} ms; still trying in the background`);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
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
    return [...byName].map(([name, modes]) => ({ name, modes: [...modes] }));
  }

  private async registerUntilDone(): Promise<void> {
    const client = new TransactionClient({ coordinatorUrl: this.options.coordinatorUrl, apiKey: this.options.apiKey });
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await client.registerParticipant({ name: this.options.name, ...registrationAddress(this.options), actions: this.actions() });
        this.logger.log(`registered as ${this.options.name} at ${this.where()} with ${this.options.coordinatorUrl}`);
        return;
      } catch (error) {
        if (attempt === 1 || attempt % 10 === 0) this.logger.warn(`registration attempt ${attempt} failed: ${String(error)}`);
        await sleep(Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)));
      }
    }
  }
}
