import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';
import { DataSource } from 'typeorm';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload } from '@app/demo-support';
import { BusinessFailure, SagaAction, TccAction, TransactionParticipant, queryRows, type BranchContext } from '@nest-dtx/sdk';
import { OrderEntity, type OrderStatus } from './order.entity.js';

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Payload of the create action (both modes). */
export class CreateOrderPayload {
  @IsString() @Matches(NAME) orderId!: string;
  @IsString() @Matches(NAME) customer!: string;
  @IsString() @Matches(NAME) sku!: string;
  @IsInt() @Min(1) @Max(1_000_000) qty!: number;
  @IsInt() @Min(0) @Max(1_000_000_000_000) amount!: number;
}

export interface OrdersSummary {
  orders: OrderEntity[];
  counts: Record<OrderStatus, number>;
}

/**
 * Orders. TCC: try creates the order `pending`, confirm makes it `confirmed`, cancel
 * `cancelled`. Saga: the step creates it `confirmed` at once; compensation cancels it.
 * Phase 2 only touches the order its own gid created: an order id taken by another
 * transaction refuses phase 1, and the SDK turns that branch's rollback into a no-op.
 */
@Injectable()
@TransactionParticipant()
export class OrdersService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @TccAction({ name: 'create', confirm: 'confirmCreate', cancel: 'cancelCreate' })
  async tryCreate(payload: Json, { manager, gid }: BranchContext): Promise<Json> {
    const order = parsePayload(CreateOrderPayload, payload);
    await this.insert(manager, order, 'pending', gid);
    return { orderId: order.orderId, status: 'pending' };
  }

  async confirmCreate(payload: Json, { manager, gid }: BranchContext): Promise<void> {
    const { orderId } = parsePayload(CreateOrderPayload, payload);
    await manager.query(`UPDATE orders SET status = 'confirmed' WHERE id = $1 AND gid = $2 AND status = 'pending'`, [orderId, gid]);
  }

  async cancelCreate(payload: Json, { manager, gid }: BranchContext): Promise<void> {
    const { orderId } = parsePayload(CreateOrderPayload, payload);
    await manager.query(`UPDATE orders SET status = 'cancelled' WHERE id = $1 AND gid = $2 AND status = 'pending'`, [orderId, gid]);
  }

  @SagaAction({ name: 'create', compensate: 'compensateCreate' })
  async executeCreate(payload: Json, { manager, gid }: BranchContext): Promise<Json> {
    const order = parsePayload(CreateOrderPayload, payload);
    await this.insert(manager, order, 'confirmed', gid);
    return { orderId: order.orderId, status: 'confirmed' };
  }

  async compensateCreate(payload: Json, { manager, gid }: BranchContext): Promise<void> {
    const { orderId } = parsePayload(CreateOrderPayload, payload);
    await manager.query(`UPDATE orders SET status = 'cancelled' WHERE id = $1 AND gid = $2`, [orderId, gid]);
  }

  async summary(): Promise<OrdersSummary> {
    const orders = await this.db.getRepository(OrderEntity).find({ order: { createdAt: 'ASC' } });
    const counts: Record<OrderStatus, number> = { pending: 0, confirmed: 0, cancelled: 0 };
    for (const order of orders) counts[order.status]++;
    return { orders, counts };
  }

  find(id: string): Promise<OrderEntity | null> {
    return this.db.getRepository(OrderEntity).findOneBy({ id });
  }

  /** Creates the order in `status`; an order id already taken refuses the branch. */
  private async insert(manager: BranchContext['manager'], order: CreateOrderPayload, status: OrderStatus, gid: string): Promise<void> {
    const rows = await queryRows(
      manager,
      `INSERT INTO orders (id, customer, sku, qty, amount, status, gid) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [order.orderId, order.customer, order.sku, order.qty, order.amount, status, gid],
    );
    if (rows.length === 0) throw new BusinessFailure(`order ${order.orderId} exists`, { reason: 'order_exists' });
  }
}
