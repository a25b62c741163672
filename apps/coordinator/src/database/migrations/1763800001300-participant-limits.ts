import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `participants.max_in_flight`: an operator's ceiling on the calls one instance has in flight to
 * this participant at once (PUT /admin/participants/{name}/limits). NULL: PARTICIPANT_MAX_IN_FLIGHT.
 * A registration does not touch it, so re-registering keeps what the operator set.
 */
export class ParticipantLimits1763800001300 implements MigrationInterface {
  name = 'ParticipantLimits1763800001300';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE participants ADD COLUMN max_in_flight integer NULL CHECK (max_in_flight > 0)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE participants DROP COLUMN max_in_flight`);
  }
}
