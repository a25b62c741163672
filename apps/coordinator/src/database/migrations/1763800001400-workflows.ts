import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Workflows (PROTOCOL.md 3.7) and long-running answers (3.6).
 * - `global_transactions.mode` takes `workflow`; `workflow_participant`/`workflow_name` name the
 *   host's workflow (the resume call's target), `input` is what it was begun with, `result` what
 *   its commit carried.
 * - `branches.kind` is a workflow step's kind (tcc, 2pc, saga, local); NULL on every other
 *   transaction's branches, whose kind is their transaction's mode.
 * - `branches.compensate`: a workflow's local step's compensation `{ participant, action, payload }`,
 *   called on rollback; NULL when it has none (and on every other branch).
 * - `branches.waiting_since`: the branch's phase in progress answered `202` (ongoing) since then;
 *   NULL once a final answer came, and on every branch that never answered so.
 */
export class Workflows1763800001400 implements MigrationInterface {
  name = 'Workflows1763800001400';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      ALTER TABLE global_transactions
        DROP CONSTRAINT global_transactions_mode_check,
        ADD CONSTRAINT global_transactions_mode_check CHECK (mode IN ('tcc', '2pc', 'saga', 'msg', 'workflow')),
        ADD COLUMN workflow_participant varchar(64) NULL,
        ADD COLUMN workflow_name varchar(64) NULL,
        ADD COLUMN input jsonb NULL,
        ADD COLUMN result jsonb NULL`);
    await runner.query(`
      ALTER TABLE branches
        ADD COLUMN kind varchar(8) NULL CHECK (kind IN ('tcc', '2pc', 'saga', 'local')),
        ADD COLUMN compensate jsonb NULL,
        ADD COLUMN waiting_since timestamptz NULL`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DELETE FROM global_transactions WHERE mode = 'workflow'`);
    await runner.query(`ALTER TABLE branches DROP COLUMN kind, DROP COLUMN compensate, DROP COLUMN waiting_since`);
    await runner.query(`
      ALTER TABLE global_transactions
        DROP CONSTRAINT global_transactions_mode_check,
        ADD CONSTRAINT global_transactions_mode_check CHECK (mode IN ('tcc', '2pc', 'saga', 'msg')),
        DROP COLUMN workflow_participant,
        DROP COLUMN workflow_name,
        DROP COLUMN input,
        DROP COLUMN result`);
  }
}
