/**
 * Where the processes of a jepsen run live: all on 127.0.0.1 (every fault but partition), or
 * each on a host of its own in a network namespace (partition; network.ts).
 */
import type { Placement } from '../stack.js';
import type { Bank } from '../transfers.js';
import { NET_HOSTS, inNamespace, type NetHost } from './network.js';

export interface Where {
  address: string;
  ns: string | null;
  /** The partition runs' host, for cuts. */
  net: NetHost | null;
}

export interface Topology {
  netns: boolean;
  coordinators: Where[];
  banks: Record<Bank, Where>;
  /** The coordinators' Postgres, the banks' Postgres, Redis. */
  pg: Where;
  bankdb: Where;
  redis: Where;
  /** The suite's own client (load, checks): this process. */
  client: Where;
}

const loop: Where = { address: '127.0.0.1', ns: null, net: null };
const on = (host: NetHost): Where => ({ address: host.address, ns: host.ns, net: host });

export const LOOPBACK: Topology = {
  netns: false,
  coordinators: [loop, loop],
  banks: { 'bank-a': loop, 'bank-b': loop },
  pg: loop,
  bankdb: loop,
  redis: loop,
  client: loop,
};

export const NAMESPACES: Topology = {
  netns: true,
  coordinators: [on(NET_HOSTS.c0), on(NET_HOSTS.c1)],
  banks: { 'bank-a': on(NET_HOSTS['bank-a']), 'bank-b': on(NET_HOSTS['bank-b']) },
  pg: on(NET_HOSTS.pg),
  bankdb: on(NET_HOSTS.bankdb),
  redis: on(NET_HOSTS.redis),
  client: on(NET_HOSTS.client),
};

/** How a program is started at `where`. */
export function launcher(where: Where): (program: string, args: string[]) => { program: string; args: string[] } {
  return (program, args) => (where.ns ? inNamespace(where.ns, program, args) : { program, args });
}

export function placement(where: Where, port?: number): Placement {
  return { host: where.address, ...(port === undefined ? {} : { port }), ...(where.ns ? { wrap: launcher(where) } : {}) };
}
