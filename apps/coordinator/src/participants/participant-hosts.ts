/**
 * The participant host allow-list (PARTICIPANT_HOSTS): the coordinator calls only registered
 * participants, and with this list it also refuses to register one whose address is elsewhere,
 * so a leaked participant key cannot point the coordinator at an arbitrary machine, nor at
 * another port (a database, an admin console) of an allowed one.
 */

import { isIP } from 'node:net';

/** A DNS name (labels of letters, digits, underscores as Docker allows, inner hyphens), an IPv4 or a bracket-free IPv6 address. */
const HOST_PATTERN = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*|[0-9a-f:.]*:[0-9a-f:.]*)$/;

/** Allowed hosts (lower-case, IPv6 without brackets), each with its allowed ports; null: any port. */
export type ParticipantHostList = ReadonlyMap<string, ReadonlySet<number> | null>;

/** Lower-case, IPv6 brackets removed: the form both the list and registrations are compared in. */
export function normaliseHost(host: string): string {
  return host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/**
 * One entry: `bank-a`, `bank-a:8080`, `127.0.0.1:4001`, `[::1]:4001`, or a bare IPv6 address
 * (`::1`, any port: with more than one colon, a port needs the brackets). Null when it is no host.
 */
export function parseHostEntry(entry: string): { host: string; port: number | null } | null {
  const text = entry.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(text);
  const named = /^([^:[\]]*):(\d{1,5})$/.exec(text);
  const [host, portText] = bracketed ? [bracketed[1], bracketed[2]] : named ? [named[1], named[2]] : [text, undefined];
  if (host.length === 0 || host.length > 253 || !HOST_PATTERN.test(host)) return null;
  // Colons make it an IPv6 address, which must then be a whole one.
  if (bracketed ? isIP(host) !== 6 : host.includes(':') && isIP(host) !== 6) return null;
  if (portText === undefined) return { host, port: null };
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : null;
}

/** Parses `127.0.0.1:4001,localhost,bank-a:8080,[::1]:4001`; throws one line on an entry that is no host. */
export function parseParticipantHosts(spec: string): ParticipantHostList {
  const hosts = new Map<string, Set<number> | null>();
  spec.split(',').forEach((entry, index) => {
    const parsed = parseHostEntry(entry);
    if (!parsed) {
      throw new Error(`entry ${index + 1} (${JSON.stringify(entry.trim().slice(0, 40))}) is not a host name or IP address, with an optional :port`);
    }
    const ports = hosts.get(parsed.host);
    // An entry without a port allows every port of its host, whatever other entries list.
    if (parsed.port === null || ports === null) hosts.set(parsed.host, null);
    else hosts.set(parsed.host, new Set([...(ports ?? []), parsed.port]));
  });
  return hosts;
}

/** The field, host and port of a registration that the allow-list refuses, or null when it may register. */
export function hostOutsideAllowList(
  allowed: ParticipantHostList | null,
  registration: { transport: string; endpoint?: string; host?: string; port?: number },
): { field: 'endpoint' | 'host' | 'port'; host: string; port: number | null } | null {
  if (allowed === null) return null;
  if (registration.transport === 'http' && registration.endpoint !== undefined) {
    // URL parsing is what the invoker will do, so the host and port checked are the ones called.
    const url = new URL(registration.endpoint);
    const host = normaliseHost(url.hostname);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return allows(allowed, host, port) ? null : { field: 'endpoint', host, port };
  }
  if (registration.transport === 'tcp' && registration.host !== undefined) {
    const host = normaliseHost(registration.host);
    const port = registration.port ?? null;
    if (!allowed.has(host)) return { field: 'host', host, port };
    return port === null || allows(allowed, host, port) ? null : { field: 'port', host, port };
  }
  // Redis, RabbitMQ and NATS participants have no address: the coordinator uses its own broker connection.
  return null;
}

function allows(allowed: ParticipantHostList, host: string, port: number): boolean {
  if (!allowed.has(host)) return false;
  const ports = allowed.get(host);
  return ports === null || ports === undefined || ports.has(port);
}
