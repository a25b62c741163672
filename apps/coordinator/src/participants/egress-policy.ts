/**
 * The egress policy (PARTICIPANT_NETWORKS): which addresses the coordinator may call a
 * participant at. A participant key chooses where the coordinator sends requests, and the
 * participant's answer comes back to that key as the branch's result: without a policy a leaked
 * key could read the cloud metadata service or probe the coordinator's own network.
 *
 * Pure: parsing and classifying only. Registration checks IP literals with it; the invoker checks
 * every address a name resolves to just before it connects.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** What an address is, after unwrapping any IPv4 address embedded in an IPv6 one. */
export type AddressClass = 'loopback' | 'private' | 'public' | 'link-local' | 'unspecified' | 'multicast' | 'broadcast' | 'reserved';

/** Classes no setting allows: nothing a participant legitimately listens on, and the usual SSRF targets (metadata services live in link-local). */
export const ALWAYS_REFUSED: readonly AddressClass[] = ['link-local', 'unspecified', 'multicast', 'broadcast', 'reserved'];

/** The classes PARTICIPANT_NETWORKS can name. */
export type NetworkKeyword = 'loopback' | 'private' | 'public';
const KEYWORDS: readonly NetworkKeyword[] = ['loopback', 'private', 'public'];

/** First match wins, so narrower ranges come before the ranges that contain them. */
const IPV4_RANGES: readonly (readonly [string, AddressClass])[] = [
  ['255.255.255.255/32', 'broadcast'],
  ['0.0.0.0/8', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'private'], // carrier-grade NAT: inside a provider's network, not the internet
  ['198.18.0.0/15', 'private'], // benchmarking: some networks use it internally
  ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
  ['192.0.2.0/24', 'reserved'], // documentation
  ['198.51.100.0/24', 'reserved'],
  ['203.0.113.0/24', 'reserved'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
];

const IPV6_RANGES: readonly (readonly [string, AddressClass])[] = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fe80::/10', 'link-local'],
  // AWS's IPv6 instance metadata service sits inside the unique-local range: refused as the
  // link-local metadata address is, whatever PARTICIPANT_NETWORKS allows.
  ['fd00:ec2::254/128', 'link-local'],
  ['fec0::/10', 'private'], // deprecated site-local: still only reachable inside a site
  ['fc00::/7', 'private'], // unique local
  ['ff00::/8', 'multicast'],
  ['100::/64', 'reserved'], // discard-only
  ['2001:db8::/32', 'reserved'], // documentation
];

const parsedRanges = <T extends Address>(table: readonly (readonly [string, AddressClass])[]) =>
  table.map(([cidr, cls]) => [ipaddr.parseCIDR(cidr) as [T, number], cls] as const);
const V4 = parsedRanges<ipaddr.IPv4>(IPV4_RANGES);
const V6 = parsedRanges<ipaddr.IPv6>(IPV6_RANGES);

/** IPv6 prefixes that carry an IPv4 address, and where: the packet ends up at that IPv4 address. */
const EMBEDDING: readonly { range: [ipaddr.IPv6, number]; ipv4At: (parts: number[]) => [number, number] }[] = [
  { range: ipaddr.parseCIDR('::ffff:0:0/96') as [ipaddr.IPv6, number], ipv4At: (p) => [p[6], p[7]] }, // IPv4-mapped
  { range: ipaddr.parseCIDR('::ffff:0:0:0/96') as [ipaddr.IPv6, number], ipv4At: (p) => [p[6], p[7]] }, // IPv4-translated (RFC 6145)
  { range: ipaddr.parseCIDR('64:ff9b::/96') as [ipaddr.IPv6, number], ipv4At: (p) => [p[6], p[7]] }, // NAT64 (RFC 6052)
  { range: ipaddr.parseCIDR('2002::/16') as [ipaddr.IPv6, number], ipv4At: (p) => [p[1], p[2]] }, // 6to4
];
/** ::/96 holds the deprecated IPv4-compatible addresses, except :: and ::1 themselves. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96') as [ipaddr.IPv6, number];

/**
 * The address a host string denotes, in any spelling, or null for a name. Dotted IPv4, IPv6 (with
 * or without brackets, a zone allowed), and the number forms WHATWG URL (and inet_aton, which
 * resolves a TCP host) read as IPv4: `2130706433`, `0x7f000001`, `0177.1`, `127.1`.
 */
export function addressOfHost(host: string): string | null {
  const bare = host.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0) return ipaddr.parse(bare.replace(/%.*$/, '')).toString();
  // Only characters a host name has: anything else is no address, and keeps URL from reading
  // `user@127.0.0.1` as the address after the @.
  if (!/^[0-9a-z._-]+$/i.test(bare)) return null;
  let hostname: string;
  try {
    hostname = new URL(`http://${bare}/`).hostname;
  } catch {
    return null;
  }
  return isIP(hostname) === 4 ? hostname : null;
}

/** The IPv4 address an IPv6 address embeds (mapped, translated, NAT64, 6to4, compatible), or the address itself. */
export function effectiveAddress(address: Address): Address {
  if (address.kind() === 'ipv4') return address;
  const v6 = address as ipaddr.IPv6;
  for (const { range, ipv4At } of EMBEDDING) {
    if (v6.match(range)) return fromWords(ipv4At(v6.parts));
  }
  if (v6.match(IPV4_COMPATIBLE) && !v6.match(V6[0][0]) && !v6.match(V6[1][0])) return fromWords([v6.parts[6], v6.parts[7]]);
  return v6;
}

function fromWords([high, low]: [number, number]): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** The class of an IP address (any spelling `addressOfHost` reads); throws on a name. */
export function classifyAddress(ip: string): AddressClass {
  const literal = addressOfHost(ip);
  if (literal === null) throw new Error(`${ip} is not an IP address`);
  return classOf(effectiveAddress(ipaddr.parse(literal)));
}

function classOf(address: Address): AddressClass {
  if (address.kind() === 'ipv4') {
    const v4 = address as ipaddr.IPv4;
    return V4.find(([range]) => v4.match(range))?.[1] ?? 'public';
  }
  const v6 = address as ipaddr.IPv6;
  return V6.find(([range]) => v6.match(range))?.[1] ?? 'public';
}

/** `10.1.0.0/16` or `fd00::/8`, the way the operator wrote it plus the parsed range. */
interface NetworkRange {
  text: string;
  range: [Address, number];
}

/** The parsed PARTICIPANT_NETWORKS: classes allowed by name, and ranges allowed on top. */
export class EgressPolicy {
  private constructor(
    readonly keywords: ReadonlySet<NetworkKeyword>,
    private readonly ranges: readonly NetworkRange[],
    /** Where the setting came from, for the start-up line and refusals. */
    readonly source: string,
  ) {}

  /** Parses `loopback,private,public,10.1.0.0/16,fd00::/8`; throws one line on an entry that is none of those. */
  static parse(spec: string, source = 'PARTICIPANT_NETWORKS'): EgressPolicy {
    const keywords = new Set<NetworkKeyword>();
    const ranges: NetworkRange[] = [];
    spec.split(',').map((entry) => entry.trim().toLowerCase()).forEach((entry, index) => {
      if ((KEYWORDS as readonly string[]).includes(entry)) keywords.add(entry as NetworkKeyword);
      else if (entry.includes('/') && ipaddr.isValidCIDR(entry)) ranges.push({ text: entry, range: ipaddr.parseCIDR(entry) });
      else throw new Error(`entry ${index + 1} (${JSON.stringify(entry.slice(0, 40))}) is not loopback, private, public or a CIDR such as 10.1.0.0/16`);
    });
    return new EgressPolicy(keywords, ranges, source);
  }

  /**
   * Unset: everything but the always-refused classes when API keys are off (the coordinator then
   * listens on loopback only, and a local trial calls participants on 127.0.0.1), public only
   * when they are on (the coordinator is reachable by others, and so are its participant keys).
   */
  static defaultFor(apiKeysConfigured: boolean): EgressPolicy {
    return apiKeysConfigured
      ? EgressPolicy.parse('public', 'PARTICIPANT_NETWORKS unset, API_KEYS set: public only')
      : EgressPolicy.parse('loopback,private,public', 'PARTICIPANT_NETWORKS unset, no API_KEYS');
  }

  /** The setting as one line: `loopback, 10.1.0.0/16`. */
  describe(): string {
    return [...KEYWORDS.filter((k) => this.keywords.has(k)), ...this.ranges.map((r) => r.text)].join(', ') || 'nothing';
  }

  /** Why the policy refuses an IP address (any spelling), or null when the coordinator may call it. */
  refusal(ip: string): string | null {
    const literal = addressOfHost(ip);
    if (literal === null) return `${ip} is not an IP address`;
    const address = ipaddr.parse(literal);
    const effective = effectiveAddress(address);
    const cls = classOf(effective);
    const shown = effective === address ? literal : `${literal} (${effective.toString()})`;
    if (ALWAYS_REFUSED.includes(cls)) return `address ${shown} refused by the egress policy: ${cls} addresses are never called`;
    if (this.keywords.has(cls as NetworkKeyword)) return null;
    if (this.ranges.some(({ range }) => inRange(address, range) || inRange(effective, range))) return null;
    return `address ${shown} refused by the egress policy: ${cls} is not in PARTICIPANT_NETWORKS (${this.describe()})`;
  }
}

function inRange(address: Address, range: [Address, number]): boolean {
  // ipaddr throws when the families differ; such a range simply does not contain the address.
  return address.kind() === range[0].kind() && address.match(range);
}

/**
 * The field and reason when a registration names an IP literal the policy refuses; null
 * otherwise. A name passes here: what it resolves to is checked when the coordinator connects.
 */
export function registrationAddressRefusal(
  policy: EgressPolicy,
  registration: { transport: string; endpoint?: string; host?: string },
): { field: 'endpoint' | 'host'; reason: string } | null {
  const field = registration.transport === 'http' ? 'endpoint' : registration.transport === 'tcp' ? 'host' : null;
  // URL parsing is what the invoker does, so the address checked is the address called.
  const host = field === 'endpoint' && registration.endpoint !== undefined ? new URL(registration.endpoint).hostname : field === 'host' ? registration.host : undefined;
  if (field === null || host === undefined) return null;
  const address = addressOfHost(host);
  const reason = address === null ? null : policy.refusal(address);
  return reason === null ? null : { field, reason };
}
