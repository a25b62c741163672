import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Transactional messages (PROTOCOL.md 3.1, mode `msg`) and broker participants.
 *
 * - `global_transactions.mode` takes `msg`; `check_participant`/`check_action` name the action
 *   of the caller's service that the coordinator asks, at the deadline, whether the local
 *   transaction of the message committed. NULL for every other mode.
 * - `participants.transport` takes `rabbitmq` and `nats` (the coordinator's own broker
 *   connection, as for `redis`); `publish` marks a participant whose actions are a RabbitMQ
 *   queue or a NATS JetStream subject the coordinator publishes to, with no reply.
 */
export class Messages1763800000900 implements MigrationInterface {
  name = 'Messages1763800000900';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      ALTER TABLE global_transactions
        DROP CONSTRAINT global_transactions_mode_check,
        ADD CONSTRAINT global_transactions_mode_check CHECK (mode IN ('tcc', '2pc', 'saga', 'msg')),
        ADD COLUMN check_participant varchar(64) NULL,
        ADD COLUMN check_action      varchar(64) NULL`);
    await runner.query(`
      ALTER TABLE participants
        DROP CONSTRAINT participants_transport_check,
        ADD CONSTRAINT participants_transport_check CHECK (transport IN ('http', 'tcp', 'redis', 'rabbitmq', 'nats')),
        ADD COLUMN publish boolean NOT NULL DEFAULT false`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DELETE FROM participants WHERE transport IN ('rabbitmq', 'nats')`);
    await runner.query(`
      ALTER TABLE participants
        DROP COLUMN publish,
        DROP CONSTRAINT participants_transport_check,
        ADD CONSTRAINT participants_transport_check CHECK (transport IN ('http', 'tcp', 'redis'))`);
    await runner.query(`DELETE FROM global_transactions WHERE mode = 'msg'`);
    await runner.query(`
      ALTER TABLE global_transactions
        DROP COLUMN check_participant, DROP COLUMN check_action,
        DROP CONSTRAINT global_transactions_mode_check,
        ADD CONSTRAINT global_transactions_mode_check CHECK (mode IN ('tcc', '2pc', 'saga'))`);
  }
}
