/**
 * Vitest's global set-up of the integration and end-to-end projects (not the unit project, which
 * needs no services). Before any of their tests runs:
 *
 * - it checks every prerequisite of the projects in this run (test/support/prerequisites.ts) and,
 *   when TEST_DATABASE_URL is set, that its Postgres has prepared transactions on; whatever is
 *   wrong is reported in one error, with the commands that fix it, and nothing runs;
 * - unless TEST_DATABASE_URL is set, it starts the run's own Postgres
 *   (test/support/test-postgres.ts) and sets TEST_DATABASE_URL to it. Vitest forks the test
 *   workers after the global set-up, with its environment (checked on Vitest 3.2), and the
 *   processes the tests spawn inherit theirs: all of them use that Postgres.
 *
 * Each project runs its global set-up in the same Vitest process: the first one does the work,
 * and the teardown of the last one stops the Postgres.
 */
import type { TestProject } from 'vitest/node';
import { describeMissing, missingPrerequisites, type Tier } from './prerequisites.js';
import { problemWithGivenPostgres, startTestPostgres, type TestPostgres } from './test-postgres.js';

interface SharedSetUp {
  /** Projects whose global set-up ran and whose teardown has not. */
  users: number;
  /** The run's own Postgres; null when TEST_DATABASE_URL named one. */
  ready: Promise<TestPostgres | null>;
}

/** The projects' global set-ups are loaded apart (one module instance each): they meet on globalThis. */
const SHARED_KEY = '__nestDtxTestServices';
type Holder = typeof globalThis & { [SHARED_KEY]?: SharedSetUp };

const isTier = (name: string): name is Tier => name === 'integration' || name === 'e2e';

/** One error, its message alone: a stack into this file would only hide the list. */
function prerequisiteError(count: number, problems: string[]): Error {
  const error = new Error(
    [
      `The integration and end-to-end tests cannot run on this machine (${count} problem${count === 1 ? '' : 's'}):`,
      ...problems,
      '(npm run test:unit runs the unit tests, which need none of this.)',
    ].join('\n'),
  );
  error.stack = error.message;
  return error;
}

async function prepare(tiers: Tier[]): Promise<TestPostgres | null> {
  const given = process.env.TEST_DATABASE_URL;
  const [missing, postgresProblem] = await Promise.all([missingPrerequisites(tiers), given ? problemWithGivenPostgres(given) : Promise.resolve(null)]);
  const problems = [...(postgresProblem ? [`- ${postgresProblem}`] : []), ...(missing.length > 0 ? [describeMissing(missing)] : [])];
  if (problems.length > 0) throw prerequisiteError(missing.length + (postgresProblem ? 1 : 0), problems);
  if (given) return null;
  const postgres = await startTestPostgres();
  process.env.TEST_DATABASE_URL = postgres.url;
  return postgres;
}

export default async function setUpServices(project: TestProject): Promise<() => Promise<void>> {
  const holder = globalThis as Holder;
  // Every project of this run that needs services: their prerequisites are checked together,
  // so that one error lists all that is missing.
  const tiers = project.vitest.projects.map((p) => p.name).filter(isTier);
  const shared = (holder[SHARED_KEY] ??= { users: 0, ready: prepare(tiers) });
  shared.users++;
  const postgres = await shared.ready;
  return async () => {
    shared.users--;
    if (shared.users > 0) return;
    delete holder[SHARED_KEY];
    await postgres?.stop();
  };
}
