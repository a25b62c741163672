/**
 * The partition runs' network: each host (coordinator instance, bank, Postgres, Redis, and the
 * suite's own client) in a network namespace of its own, joined by veth pairs to a bridge in one
 * more namespace, addresses in 10.231.0.0/24. No address of the machine's own namespace is
 * involved: the suite's traffic stays inside these namespaces (or on 127.0.0.1 within one).
 *
 * A cut drops every packet on the sending side, as `tc netem loss 100%` would: every host's
 * interface has an htb qdisc with a class whose queue holds no packet (pfifo limit 0: whatever is
 * sent to it is dropped), and a u32 filter per cut destination sends that destination's packets
 * there (a filter per destination, at a priority of its own, so that one cut is healed without
 * touching the others). Cuts are symmetric: both ends drop. (netem is not used: kernels built
 * without sch_netem, as this machine's is, have htb, pfifo and u32 all the same.)
 */
import { NS_PREFIX, deleteNamespaces, must, suiteNamespaces } from './system.js';

export const SUBNET = '10.231.0.0/24';
const BRIDGE_NS = `${NS_PREFIX}br`;

export interface NetHost {
  /** Short name: c0, bank-a, pg... */
  name: string;
  ns: string;
  address: string;
  /** This host's filter priority when it is the destination of a cut. */
  prio: number;
}

/** The hosts of a partition run. */
export const NET_HOSTS = {
  client: host('client', 2),
  c0: host('c0', 10),
  c1: host('c1', 11),
  'bank-a': host('bank-a', 20),
  'bank-b': host('bank-b', 21),
  pg: host('pg', 30),
  bankdb: host('bankdb', 31),
  redis: host('redis', 40),
} as const satisfies Record<string, NetHost>;
export type NetHostName = keyof typeof NET_HOSTS;

function host(name: string, last: number): NetHost {
  return { name, ns: `${NS_PREFIX}${name}`, address: `10.231.0.${last}`, prio: 100 + last };
}

/** The priority of the filter that cuts a host from everything. */
const ALL_PRIO = 50;

/** `ip netns exec <ns> program args...`: how a process is started on a host. */
export function inNamespace(ns: string, program: string, args: readonly string[]): { program: string; args: string[] } {
  return { program: 'ip', args: ['netns', 'exec', ns, program, ...args] };
}

/** Creates the namespaces, the bridge and the links, with the drop band on every host's interface. */
export async function createNetwork(): Promise<void> {
  await deleteNamespaces(await suiteNamespaces());
  await must('ip', ['netns', 'add', BRIDGE_NS]);
  await must('ip', ['-n', BRIDGE_NS, 'link', 'set', 'lo', 'up']);
  await must('ip', ['-n', BRIDGE_NS, 'link', 'add', 'br0', 'type', 'bridge']);
  await must('ip', ['-n', BRIDGE_NS, 'link', 'set', 'br0', 'up']);
  for (const h of Object.values(NET_HOSTS)) {
    await must('ip', ['netns', 'add', h.ns]);
    await must('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
    const peer = `v-${h.name}`.slice(0, 15);
    await must('ip', ['link', 'add', 'eth0', 'netns', h.ns, 'type', 'veth', 'peer', 'name', peer, 'netns', BRIDGE_NS]);
    await must('ip', ['-n', BRIDGE_NS, 'link', 'set', peer, 'master', 'br0']);
    await must('ip', ['-n', BRIDGE_NS, 'link', 'set', peer, 'up']);
    await must('ip', ['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    // Everything goes to class 1:1 unless a filter sends it to class 1:4, which drops all.
    await must('tc', ['-n', h.ns, 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'htb', 'default', '1', 'r2q', '100000']);
    await must('tc', ['-n', h.ns, 'class', 'add', 'dev', 'eth0', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit']);
    await must('tc', ['-n', h.ns, 'class', 'add', 'dev', 'eth0', 'parent', '1:', 'classid', '1:4', 'htb', 'rate', '10gbit']);
    await must('tc', ['-n', h.ns, 'qdisc', 'add', 'dev', 'eth0', 'parent', '1:4', 'handle', '40:', 'pfifo', 'limit', '0']);
  }
}

export async function destroyNetwork(): Promise<void> {
  await deleteNamespaces(await suiteNamespaces());
}

async function drop(from: NetHost, to: NetHost | 'all'): Promise<void> {
  const [prio, dst] = to === 'all' ? [ALL_PRIO, SUBNET] : [to.prio, `${to.address}/32`];
  await must('tc', ['-n', from.ns, 'filter', 'add', 'dev', 'eth0', 'parent', '1:', 'protocol', 'ip', 'prio', String(prio), 'u32', 'match', 'ip', 'dst', dst, 'flowid', '1:4']);
}

async function undrop(from: NetHost, to: NetHost | 'all'): Promise<void> {
  const prio = to === 'all' ? ALL_PRIO : to.prio;
  await must('tc', ['-n', from.ns, 'filter', 'del', 'dev', 'eth0', 'parent', '1:', 'protocol', 'ip', 'prio', String(prio)]);
}

/** One partition: a set of host pairs cut both ways, or one host cut from everything. */
export type Cut = { kind: 'pairs'; pairs: [NetHost, NetHost][] } | { kind: 'isolate'; host: NetHost; others: NetHost[] };

export async function applyCut(cut: Cut): Promise<void> {
  if (cut.kind === 'isolate') {
    await drop(cut.host, 'all');
    for (const other of cut.others) await drop(other, cut.host);
    return;
  }
  for (const [a, b] of cut.pairs) {
    await drop(a, b);
    await drop(b, a);
  }
}

export async function healCut(cut: Cut): Promise<void> {
  if (cut.kind === 'isolate') {
    await undrop(cut.host, 'all');
    for (const other of cut.others) await undrop(other, cut.host);
    return;
  }
  for (const [a, b] of cut.pairs) {
    await undrop(a, b);
    await undrop(b, a);
  }
}
