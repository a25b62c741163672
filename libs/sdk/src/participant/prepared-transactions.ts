import { Inject, Injectable } from '@nestjs/common';
import type { PhaseCallBody } from '@nest-dtx/protocol';
import type { BarrierOutcome } from '../data-layers/core/barrier-rules.js';
import type { BusinessWork, DtxDataLayer, XaDataLayer } from '../data-layers/core/data-layer.js';
import { Xid } from '../data-layers/core/sql-xa.js';
import { DTX_DATA_LAYER } from './data-layer.provider.js';

/**
 * 2PC backed by the database's own prepared transactions (XA style): Postgres PREPARE
 * TRANSACTION, MySQL/MariaDB XA. Prepare runs the business work in a local transaction that
 * ends prepared instead of committed; commit and rollback finish it when the coordinator
 * decides, both idempotent. A participant never finishes its prepared transactions on its own:
 * after a restart it only lists them.
 */
@Injectable()
export class PreparedTransactions<Tx = unknown> {
  constructor(@Inject(DTX_DATA_LAYER) private readonly dataLayer: DtxDataLayer<Tx>) {}

  /**
   * The prepared-transaction id of a branch, as listOwn shows it: derived from gid and branchId,
   * prefixed with the participant. On Postgres it is the gid of the prepared transaction; on
   * MySQL/MariaDB the XA id is made of the same parts and the database's tag (see sql-xa.ts).
   */
  static xidFor(participant: string, gid: string, branchId: string): string {
    return new Xid(participant, { gid, branchId }).name;
  }

  /** Whether the data layer has prepared transactions at all. */
  get supported(): boolean {
    return this.dataLayer.xa !== undefined;
  }

  prepare(participant: string, call: PhaseCallBody, business: BusinessWork<Tx>): Promise<BarrierOutcome> {
    return this.xa().prepare(participant, call, business);
  }

  commit(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    return this.xa().commit(participant, call);
  }

  rollback(participant: string, call: PhaseCallBody): Promise<BarrierOutcome> {
    return this.xa().rollback(participant, call);
  }

  /** This participant's prepared transactions, left for the coordinator to finish. */
  listOwn(participant: string): Promise<string[]> {
    return this.xa().listOwn(participant);
  }

  private xa(): XaDataLayer<Tx> {
    if (!this.dataLayer.xa) throw new Error(`${this.dataLayer.description} has no prepared (XA) transactions`);
    return this.dataLayer.xa;
  }
}
