import { Injectable } from '@nestjs/common';
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload } from '@app/demo-support';
import { BusinessFailure, MsgAction, TransactionParticipant, queryRows, type BranchContext } from '@nest-dtx/sdk';

/** Payload of the msg action reserve: the order the stock goes to. */
export class OrderStockPayload {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) orderId!: string;
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) sku!: string;
  @IsInt() @Min(1) @Max(1_000_000) qty!: number;
}

/**
 * Stock for orders the order service created as two-phase messages (mode msg, its outbox): the
 * message arrives once the order is committed on the order side, so there is nothing to hold or
 * undo here: `reserve` takes the units (available to sold) at once and records which order took
 * them (table order_stock). The barrier makes it take effect once however often the coordinator
 * delivers it.
 *
 * A message cannot be refused (the order exists already): a SKU out of stock answers 409, which
 * the coordinator keeps retrying and flags for attention, so the order goes through once the
 * SKU is restocked.
 */
@Injectable()
@TransactionParticipant()
export class OrderStockService {
  @MsgAction({ name: 'reserve' })
  async reserveForOrder(payload: Json, { manager, gid, branchId }: BranchContext): Promise<Json> {
    const { orderId, sku, qty } = parsePayload(OrderStockPayload, payload);
    const taken = await queryRows(
      manager,
      `UPDATE stock SET available = available - $2, sold = sold + $2 WHERE sku = $1 AND available >= $2 RETURNING sku`,
      [sku, qty],
    );
    if (taken.length === 0) {
      const exists: unknown[] = await manager.query(`SELECT 1 FROM stock WHERE sku = $1`, [sku]);
      throw exists.length === 0
        ? new BusinessFailure(`unknown sku ${sku}`, { reason: 'unknown_sku' })
        : new BusinessFailure(`out of stock: ${sku} (order ${orderId} waits for a restock)`, { reason: 'out_of_stock' });
    }
    await manager.query(`INSERT INTO order_stock (gid, branch_id, order_id, sku, qty) VALUES ($1, $2, $3, $4, $5)`, [gid, branchId, orderId, sku, qty]);
    return { orderId, sku, sold: qty };
  }
}
