/**
 * The bench's handle on a participant's knobs (plain-participant.ts, CONTROL_PORT): its latency,
 * taking it down or bringing it back, and what it counted.
 */
import { getOk, postJson } from './http-client.js';

export type DownMode = 'closed' | 'reset' | '503' | 'hang';
export type Latency = number | Record<string, number>;

export interface ParticipantStats {
  /** Every /tx request received (answered or not). */
  calls: number;
  answered: number;
  answered503: number;
  /** Connections destroyed on arrival while down in mode `reset`: attempted calls. */
  resets: number;
  inFlight: number;
  /** The most calls held at once. */
  maxInFlight: number;
  latency: Latency;
  down: false | DownMode;
  /** [epoch second, calls, resets, answered503] */
  perSecond: [number, number, number, number][];
}

export class ParticipantControl {
  constructor(
    readonly name: string,
    /** Where the coordinator calls it (the port its connections go to). */
    readonly port: number,
    private readonly controlUrl: string,
  ) {}

  private async post(path: string, body: unknown): Promise<ParticipantStats> {
    const answer = await postJson(`${this.controlUrl}${path}`, body);
    if (answer.status !== 200) throw new Error(`${this.name} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body as ParticipantStats;
  }

  latency(latencyMs: Latency): Promise<ParticipantStats> {
    return this.post('/control', { latencyMs });
  }

  down(downMode: DownMode = 'closed'): Promise<ParticipantStats> {
    return this.post('/control', { down: true, downMode });
  }

  up(): Promise<ParticipantStats> {
    return this.post('/control', { down: false });
  }

  stats(): Promise<ParticipantStats> {
    return getOk<ParticipantStats>(`${this.controlUrl}/stats`);
  }

  /** Zeroes the counters (max in flight starts again from the calls held now). */
  reset(): Promise<ParticipantStats> {
    return this.post('/stats/reset', {});
  }
}
