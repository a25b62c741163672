import { Logger } from '@nestjs/common';
import type { Pool, PoolClient } from 'pg';
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';
import { parsePayload } from '@app/demo-support';
import { DtxInbox, type InboxMessage } from '@nest-dtx/sdk';
import { barrierTableDdl, pgDataLayer } from '@nest-dtx/sdk/pg';
import { EVENT_SOURCES, type EventSource } from './event-names.js';
import type { PublishTargets } from './publish-targets.js';

/** The payload of `order.created`, as the order service sends it. */
export class OrderCreatedPayload {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) orderId!: string;
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) customer!: string;
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,64}$/) sku!: string;
  @IsInt() @Min(1) @Max(1_000_000) qty!: number;
  @IsInt() @Min(0) @Max(1_000_000_000_000) amount!: number;
}

/**
 * The tables. order_events has one row each time an event was counted and deliberately no
 * unique key on (gid, branch_id): the barrier (dtx_barrier, in the same local transaction) is
 * what keeps a redelivered message from counting twice, and the outbox demo checks the rows to
 * show it. order_event_redeliveries records the deliveries recognised as duplicates.
 */
const SCHEMA = [
  ...barrierTableDdl('postgres'),
  `CREATE TABLE IF NOT EXISTS order_events (
    id         bigserial    PRIMARY KEY,
    source     varchar(16)  NOT NULL CHECK (source IN ('rabbitmq', 'nats')),
    gid        varchar(128) NOT NULL,
    branch_id  varchar(128) NOT NULL,
    order_id   varchar(64)  NOT NULL,
    counted_at timestamptz  NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX IF NOT EXISTS order_events_gid_idx ON order_events (gid)`,
  `CREATE TABLE IF NOT EXISTS order_event_redeliveries (
    id        bigserial    PRIMARY KEY,
    source    varchar(16)  NOT NULL,
    gid       varchar(128) NOT NULL,
    branch_id varchar(128) NOT NULL,
    seen_at   timestamptz  NOT NULL DEFAULT now()
  )`,
];

export interface EventsSummary {
  counted: Record<EventSource, number>;
  duplicates: Record<EventSource, number>;
}

/**
 * Counts each `order.created` once per source, whatever the broker redelivers: every message goes
 * through that source's DtxInbox (signature checked with its publish target's secret), whose
 * barrier row and the count row commit in one local transaction.
 */
export class EventStore {
  private readonly logger = new Logger('EventStore');
  private readonly inboxes: Record<EventSource, DtxInbox<PoolClient>>;

  constructor(
    private readonly pool: Pool,
    targets: PublishTargets,
  ) {
    const dataLayer = pgDataLayer(pool);
    this.inboxes = { rabbitmq: new DtxInbox(dataLayer, { signingSecret: targets.keysOf('rabbitmq') }), nats: new DtxInbox(dataLayer, { signingSecret: targets.keysOf('nats') }) };
  }

  async createSchema(): Promise<void> {
    for (const statement of SCHEMA) await this.pool.query(statement);
  }

  /**
   * Counts one delivered message: 'counted' the first time, 'duplicate' for a redelivery (nothing
   * counted). Throws DtxInboxError or BusinessFailure for a message to drop (nothing counted, and
   * it never will be), any other error for one to have redelivered.
   */
  async count(source: EventSource, message: InboxMessage): Promise<'counted' | 'duplicate'> {
    const receipt = await this.inboxes[source].receive(message, async (payload, { tx, gid, branchId }) => {
      const event = parsePayload(OrderCreatedPayload, payload);
      await tx.query(`INSERT INTO order_events (source, gid, branch_id, order_id) VALUES ($1, $2, $3, $4)`, [source, gid, branchId, event.orderId]);
      return { orderId: event.orderId };
    });
    if (!receipt.duplicate) return 'counted';
    // Outside the barrier's transaction: a record of what the barrier recognised, nothing depends on it.
    await this.pool
      .query(`INSERT INTO order_event_redeliveries (source, gid, branch_id) VALUES ($1, $2, $3)`, [source, receipt.gid, receipt.branchId])
      .catch((error: unknown) => this.logger.warn(`recording a redelivery failed: ${(error as Error).message}`));
    return 'duplicate';
  }

  async summary(): Promise<EventsSummary> {
    const counted = { rabbitmq: 0, nats: 0 };
    const duplicates = { rabbitmq: 0, nats: 0 };
    const rows = await this.pool.query<{ source: EventSource; kind: 'counted' | 'duplicates'; n: number }>(
      `SELECT source, 'counted' AS kind, count(*)::int AS n FROM order_events GROUP BY source
       UNION ALL SELECT source, 'duplicates', count(*)::int FROM order_event_redeliveries GROUP BY source`,
    );
    for (const row of rows.rows) if (EVENT_SOURCES.includes(row.source)) (row.kind === 'counted' ? counted : duplicates)[row.source] = row.n;
    return { counted, duplicates };
  }
}
