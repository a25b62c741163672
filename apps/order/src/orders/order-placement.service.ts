import { BadGatewayException, ConflictException, Injectable, Logger } from '@nestjs/common';
import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import type { EntityManager } from 'typeorm';
import { ID_PATTERN, type GlobalStatus } from '@nest-dtx/protocol';
import {
  BranchBarrier,
  BusinessFailure,
  CoordinatorError,
  LocalTransactionRefused,
  MsgSubmitError,
  TransactionClient,
  queryRows,
} from '@nest-dtx/sdk';

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Where an order's message goes: the inventory service (over HTTP), and the event `order.created`
 * to the two publish targets the event counter registers and consumes (apps/event-counter keeps
 * the same names): a RabbitMQ queue and a NATS JetStream subject, both named like the event.
 */
export const ORDER_MESSAGE = {
  inventory: { participant: 'inventory', action: 'reserve' },
  event: 'order.created',
  rabbitmq: 'order-events-rabbitmq',
  nats: 'order-events-nats',
} as const;

/** POST /orders: an order, created together with its message (the outbox). */
export class PlaceOrderDto {
  @IsString() @Matches(NAME) orderId!: string;
  @IsString() @Matches(NAME) customer!: string;
  @IsString() @Matches(NAME) sku!: string;
  @IsInt() @Min(1) @Max(1_000_000) qty!: number;
  /** Price in cents. */
  @IsInt() @Min(0) @Max(1_000_000_000_000) amount!: number;
  /** The message's gid, an idempotency key: the same request again finds the first message. A fresh one by default. */
  @IsOptional() @IsString() @Matches(ID_PATTERN) gid?: string;
  /** How long the message may stay unsubmitted before the coordinator asks this service whether the order committed. Default 30 s. */
  @IsOptional() @IsInt() @Min(100) @Max(24 * 60 * 60 * 1000) timeoutMs?: number;
}

export interface PlacedOrder {
  orderId: string;
  gid: string;
  /**
   * Whether the coordinator took the submit. false: the order committed but the submit got no
   * answer; the message is safe all the same (the check-back at its deadline delivers it).
   */
  submitted: boolean;
  /** The message's status as the coordinator last answered it (committing, committed; active when the submit was lost). */
  messageStatus: GlobalStatus;
}

/**
 * Creates orders as two-phase messages (mode msg; a transactional outbox without an outbox
 * table): the order row and the message commit together or not at all. The message is begun at
 * the coordinator first (active: nothing delivered), the order row is inserted in this
 * service's local transaction with the barrier row the coordinator's check-back reads, then the
 * message is submitted and the coordinator delivers it to inventory and publishes the event.
 * Killed between the local commit and the submit, the check-back at the message's deadline finds
 * the commit and delivers; killed before it, the check-back finds nothing and the message is
 * rolled back. This service answers the check-back itself: the SDK's `dtx-msg-check` action.
 */
@Injectable()
export class OrderPlacementService {
  private readonly logger = new Logger(OrderPlacementService.name);

  constructor(
    private readonly client: TransactionClient,
    private readonly barrier: BranchBarrier<EntityManager>,
  ) {}

  async place(order: PlaceOrderDto): Promise<PlacedOrder> {
    const { orderId, customer, sku, qty, amount } = order;
    const event = { orderId, customer, sku, qty, amount };
    const message = this.client
      .msg({ gid: order.gid, timeoutMs: order.timeoutMs ?? 30_000, metadata: { orderId } })
      .add(ORDER_MESSAGE.inventory.participant, ORDER_MESSAGE.inventory.action, { orderId, sku, qty })
      .add(ORDER_MESSAGE.rabbitmq, ORDER_MESSAGE.event, event)
      .add(ORDER_MESSAGE.nats, ORDER_MESSAGE.event, event);
    try {
      const view = await message.doAndSubmit(this.barrier, async (tx) => {
        const rows = await queryRows(
          tx,
          `INSERT INTO orders (id, customer, sku, qty, amount, status, gid) VALUES ($1, $2, $3, $4, $5, 'confirmed', $6)
           ON CONFLICT (id) DO NOTHING RETURNING id`,
          [orderId, customer, sku, qty, amount, message.gid],
        );
        if (rows.length === 0) throw new BusinessFailure(`order ${orderId} exists`, { reason: 'order_exists' });
      });
      return { orderId, gid: message.gid, submitted: true, messageStatus: view.status };
    } catch (error) {
      if (error instanceof MsgSubmitError) {
        this.logger.warn(error.message);
        return { orderId, gid: message.gid, submitted: false, messageStatus: 'active' };
      }
      if (error instanceof BusinessFailure || error instanceof LocalTransactionRefused) {
        const reason = error instanceof BusinessFailure ? reasonOf(error.details) : 'check_back_answered';
        throw new ConflictException({ statusCode: 409, error: 'ORDER_REFUSED', reason, message: error.message, gid: message.gid });
      }
      if (error instanceof CoordinatorError) {
        const status = error.code === 'TX_ALREADY_DECIDED' ? 409 : 502;
        const body = { statusCode: status, error: error.code === 'TX_ALREADY_DECIDED' ? 'ORDER_ALREADY_DECIDED' : 'COORDINATOR_ERROR', message: error.message, gid: message.gid };
        throw status === 409 ? new ConflictException(body) : new BadGatewayException(body);
      }
      // The local commit's outcome is unknown (say the database went away at COMMIT): the
      // message stays active and the coordinator's check-back settles it.
      throw error;
    }
  }
}

function reasonOf(details: unknown): string {
  return typeof details === 'object' && details !== null && 'reason' in details && typeof details.reason === 'string' ? details.reason : 'refused';
}
