/** What each jepsen fault kind needs on the machine (Debian packages: iproute2, faketime, haproxy, postgresql-common, redis-server). */
import { existsSync } from 'node:fs';
import type { FaultKindName } from './faults.js';
import { haveProgram } from './system.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/faketime/libfaketimeMT.so.1'];

/** libfaketime's multithreaded build (Node has threads), or undefined. */
export const libfaketime = (): string | undefined => LIBFAKETIME.find((path) => existsSync(path));

/** Why a kind cannot run on this machine, or null. */
export function missingFor(kind: FaultKindName): string | null {
  const tools = [
    'pg_createcluster',
    'pg_ctlcluster',
    'redis-server',
    ...(kind === 'partition' ? ['ip', 'tc'] : []),
    ...(kind === 'clock' ? ['faketime'] : []),
    ...(kind === 'failover' ? ['haproxy'] : []),
  ];
  const missing = tools.filter((tool) => !haveProgram(tool));
  if (kind === 'clock' && !libfaketime()) missing.push('libfaketimeMT.so.1');
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, Postgres clusters)';
  return null;
}
