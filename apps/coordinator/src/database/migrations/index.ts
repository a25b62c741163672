import { InitialSchema1763800000000 } from './1763800000000-initial-schema.js';
import { AdminIndexes1763800000500 } from './1763800000500-admin-indexes.js';
import { TraceParent1763800000600 } from './1763800000600-trace-parent.js';
import { RetentionIndex1763800000700 } from './1763800000700-retention-index.js';
import { ParticipantTrust1763800000800 } from './1763800000800-participant-trust.js';
import { Messages1763800000900 } from './1763800000900-messages.js';
import { AtLocks1763800001000 } from './1763800001000-at-locks.js';
import { OwnersAndNames1763800001200 } from './1763800001200-owners-and-names.js';
import { ParticipantLimits1763800001300 } from './1763800001300-participant-limits.js';
import { Workflows1763800001400 } from './1763800001400-workflows.js';

/** The schema is the migrations'; store/ reads and writes every table with its own SQL. */
export const COORDINATOR_MIGRATIONS = [
  InitialSchema1763800000000,
  AdminIndexes1763800000500,
  TraceParent1763800000600,
  RetentionIndex1763800000700,
  ParticipantTrust1763800000800,
  Messages1763800000900,
  AtLocks1763800001000,
  OwnersAndNames1763800001200,
  ParticipantLimits1763800001300,
  Workflows1763800001400,
];
