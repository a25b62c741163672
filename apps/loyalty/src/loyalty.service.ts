import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload } from '@app/demo-support';
import { SagaAction, TccAction, TransactionParticipant, TwoPhaseAction, type BranchContext } from '@nest-dtx/sdk';
import type { RedisBranchTx } from '@nest-dtx/sdk/redis';

export const LOYALTY_REDIS = Symbol('loyalty:redis');
/** Where the service keeps its keys (the demo clears them before a run). */
export const LOYALTY_KEY_PREFIX = Symbol('loyalty:key-prefix');

export class PointsPayload {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/)
  customer!: string;

  @IsInt() @Min(1) @Max(1_000_000_000)
  points!: number;
}

export class SetPointsDto {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/)
  customer!: string;

  @IsInt() @Min(0) @Max(1_000_000_000)
  points!: number;
}

export interface CustomerPoints {
  customer: string;
  /** Spendable. */
  points: number;
  /** Awarded by a transaction not yet committed. */
  pending: number;
  /** Taken by a redemption not yet committed. */
  held: number;
}

export interface PointsSummary {
  customers: CustomerPoints[];
  totalPoints: number;
  totalPending: number;
  totalHeld: number;
}

type Context = BranchContext<RedisBranchTx>;

/** Moves n from KEYS[1] to KEYS[2]. */
const MOVE = `redis.call('DECRBY', KEYS[1], ARGV[1]) redis.call('INCRBY', KEYS[2], ARGV[1])`;
/** Takes n points (KEYS[1]) into held (KEYS[2]), refusing before it writes anything when there are not enough. */
const HOLD = `local available = tonumber(redis.call('GET', KEYS[1]) or '0')
if available < tonumber(ARGV[1]) then return dtx_refuse('insufficient_points', 'not enough points') end
${MOVE}`;

/**
 * The loyalty-points service of the polyglot demo: its state is in Redis, and every phase
 * runs through the SDK's Redis barrier, which checks the barrier and applies the phase's
 * commands in one atomic script. Award in TCC, saga and 2PC; redeem in TCC, refused by the
 * script itself when the customer has too few points.
 */
@Injectable()
@TransactionParticipant()
export class LoyaltyService {
  constructor(
    @Inject(LOYALTY_REDIS) private readonly redis: Redis,
    @Inject(LOYALTY_KEY_PREFIX) private readonly prefix: string,
  ) {}

  private key(kind: 'points' | 'pending' | 'held', customer: string): string {
    return `${this.prefix}${kind}:${customer}`;
  }

  @TccAction({ name: 'award', confirm: 'confirmAward', cancel: 'cancelAward' })
  tryAward(payload: Json, { tx }: Context): Json {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.command('INCRBY', this.key('pending', customer), points);
    return { customer, pending: points };
  }

  confirmAward(payload: Json, { tx }: Context): void {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.script(MOVE, [this.key('pending', customer), this.key('points', customer)], [points]);
  }

  cancelAward(payload: Json, { tx }: Context): void {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.command('DECRBY', this.key('pending', customer), points);
  }

  @SagaAction({ name: 'award', compensate: 'compensateAward' })
  executeAward(payload: Json, { tx }: Context): Json {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.command('INCRBY', this.key('points', customer), points);
    return { customer, awarded: points };
  }

  compensateAward(payload: Json, { tx }: Context): void {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.command('DECRBY', this.key('points', customer), points);
  }

  /** 2PC under the barrier (Redis has no prepared transactions): prepare holds the award as pending. */
  @TwoPhaseAction({ name: 'award', commit: 'confirmAward', rollback: 'cancelAward' })
  prepareAward(payload: Json, context: Context): Json {
    return this.tryAward(payload, context);
  }

  @TccAction({ name: 'redeem', confirm: 'confirmRedeem', cancel: 'cancelRedeem' })
  tryRedeem(payload: Json, { tx }: Context): Json {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.script(HOLD, [this.key('points', customer), this.key('held', customer)], [points]);
    return { customer, held: points };
  }

  confirmRedeem(payload: Json, { tx }: Context): void {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.command('DECRBY', this.key('held', customer), points);
  }

  cancelRedeem(payload: Json, { tx }: Context): void {
    const { customer, points } = parsePayload(PointsPayload, payload);
    tx.script(MOVE, [this.key('held', customer), this.key('points', customer)], [points]);
  }

  async set(dto: SetPointsDto): Promise<CustomerPoints> {
    await this.redis.set(this.key('points', dto.customer), dto.points);
    return this.of(dto.customer);
  }

  async of(customer: string): Promise<CustomerPoints> {
    const [points, pending, held] = await this.redis.mget(this.key('points', customer), this.key('pending', customer), this.key('held', customer));
    return { customer, points: Number(points ?? 0), pending: Number(pending ?? 0), held: Number(held ?? 0) };
  }

  async summary(): Promise<PointsSummary> {
    const customers = new Set<string>();
    for (const kind of ['points', 'pending', 'held'] as const) {
      const pattern = this.key(kind, '*');
      for await (const keys of this.redis.scanStream({ match: pattern, count: 500 }) as AsyncIterable<string[]>) {
        for (const key of keys) customers.add(key.slice(pattern.length - 1));
      }
    }
    const all = await Promise.all([...customers].sort().map((customer) => this.of(customer)));
    return {
      customers: all,
      totalPoints: all.reduce((sum, c) => sum + c.points, 0),
      totalPending: all.reduce((sum, c) => sum + c.pending, 0),
      totalHeld: all.reduce((sum, c) => sum + c.held, 0),
    };
  }
}
