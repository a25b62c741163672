import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';
import { DataSource } from 'typeorm';
import type { Json } from '@nest-dtx/protocol';
import { parsePayload } from '@app/demo-support';
import { BusinessFailure, SagaAction, TccAction, TransactionParticipant, queryRows, type BranchContext } from '@nest-dtx/sdk';
import { StockEntity } from './stock.entity.js';

/** Payload of the reserve action (both modes). */
export class ReservePayload {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) sku!: string;
  @IsInt() @Min(1) @Max(1_000_000) qty!: number;
}

/** POST /stock: sets a SKU's available units (refused while some are reserved). */
export class RestockDto {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) sku!: string;
  @IsInt() @Min(0) @Max(1_000_000_000) available!: number;
}

export interface StockSummary {
  stock: StockEntity[];
  totals: { available: number; reserved: number; sold: number };
}

/**
 * Stock with reservations. TCC: try moves units from available to reserved, confirm from
 * reserved to sold, cancel back to available. Saga: the step sells at once, compensation
 * returns the units. Each reservation row (keyed by gid and branch) remembers what to undo.
 */
@Injectable()
@TransactionParticipant()
export class StockService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @TccAction({ name: 'reserve', confirm: 'confirmReserve', cancel: 'cancelReserve' })
  async tryReserve(payload: Json, context: BranchContext): Promise<Json> {
    const { sku, qty } = parsePayload(ReservePayload, payload);
    await this.take(context, sku, qty, 'reserved');
    return { sku, reserved: qty };
  }

  async confirmReserve(_payload: Json, context: BranchContext): Promise<void> {
    await this.release(context, 'reserved = reserved - r.qty, sold = sold + r.qty');
  }

  async cancelReserve(_payload: Json, context: BranchContext): Promise<void> {
    await this.release(context, 'reserved = reserved - r.qty, available = available + r.qty');
  }

  @SagaAction({ name: 'reserve', compensate: 'compensateReserve' })
  async executeReserve(payload: Json, context: BranchContext): Promise<Json> {
    const { sku, qty } = parsePayload(ReservePayload, payload);
    await this.take(context, sku, qty, 'sold');
    return { sku, sold: qty };
  }

  async compensateReserve(_payload: Json, context: BranchContext): Promise<void> {
    await this.release(context, 'sold = sold - r.qty, available = available + r.qty');
  }

  async restock(dto: RestockDto): Promise<StockEntity> {
    await this.db.query(
      `INSERT INTO stock (sku, available) VALUES ($1, $2)
       ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available WHERE stock.reserved = 0`,
      [dto.sku, dto.available],
    );
    return this.db.getRepository(StockEntity).findOneByOrFail({ sku: dto.sku });
  }

  async summary(): Promise<StockSummary> {
    const stock = await this.db.getRepository(StockEntity).find({ order: { sku: 'ASC' } });
    const totals = { available: 0, reserved: 0, sold: 0 };
    for (const s of stock) {
      totals.available += s.available;
      totals.reserved += s.reserved;
      totals.sold += s.sold;
    }
    return { stock, totals };
  }

  /** Moves `qty` units of `sku` from available to `into`, and records the reservation. */
  private async take({ manager, gid, branchId }: BranchContext, sku: string, qty: number, into: 'reserved' | 'sold'): Promise<void> {
    const rows = await queryRows(
      manager,
      `UPDATE stock SET available = available - $2, ${into} = ${into} + $2 WHERE sku = $1 AND available >= $2 RETURNING sku`,
      [sku, qty],
    );
    if (rows.length === 0) {
      const exists: unknown[] = await manager.query(`SELECT 1 FROM stock WHERE sku = $1`, [sku]);
      throw exists.length === 0
        ? new BusinessFailure(`unknown sku ${sku}`, { reason: 'unknown_sku' })
        : new BusinessFailure(`out of stock: ${sku}`, { reason: 'out_of_stock' });
    }
    await manager.query(`INSERT INTO reservations (gid, branch_id, sku, qty) VALUES ($1, $2, $3, $4)`, [gid, branchId, sku, qty]);
  }

  /** Ends the branch's reservation, moving its units as `assignments` says. */
  private async release({ manager, gid, branchId }: BranchContext, assignments: string): Promise<void> {
    await manager.query(
      `WITH r AS (DELETE FROM reservations WHERE gid = $1 AND branch_id = $2 RETURNING sku, qty)
       UPDATE stock SET ${assignments} FROM r WHERE stock.sku = r.sku`,
      [gid, branchId],
    );
  }
}
