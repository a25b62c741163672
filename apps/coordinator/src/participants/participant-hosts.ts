/**
 * The participant host allow-list (PARTICIPANT_HOSTS): the coordinator calls only registered
 * participants, and with this list it also refuses to register one whose address is elsewhere,
 * so a leaked participant key cannot point the coordinator at an arbitrary machine.
 */

/** A DNS name (labels of letters, digits, underscores as Docker allows, inner hyphens), an IPv4 or a bracket-free IPv6 address. */
const HOST_PATTERN = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*|[0-9a-f:.]*:[0-9a-f:.]*)$/;

/** Lower-case, IPv6 brackets removed: the form both the list and registrations are compared in. */
export function normaliseHost(host: string): string {
  return host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** Parses `127.0.0.1,localhost,bank-a`; throws one line on an entry that is no host. */
export function parseParticipantHosts(spec: string): ReadonlySet<string> {
  const hosts = spec.split(',').map(normaliseHost);
  hosts.forEach((host, index) => {
    if (host.length === 0 || host.length > 253 || !HOST_PATTERN.test(host)) {
      throw new Error(`entry ${index + 1} (${JSON.stringify(host.slice(0, 40))}) is not a host name or IP address`);
    }
  });
  return new Set(hosts);
}

/** The field and host of a registration that the allow-list refuses, or null when it may register. */
export function hostOutsideAllowList(
  allowed: ReadonlySet<string> | null,
  registration: { transport: string; endpoint?: string; host?: string },
): { field: 'endpoint' | 'host'; host: string } | null {
  if (allowed === null) return null;
  if (registration.transport === 'http' && registration.endpoint !== undefined) {
    // URL parsing is what the invoker will do, so the host checked is the host called.
    const host = normaliseHost(new URL(registration.endpoint).hostname);
    return allowed.has(host) ? null : { field: 'endpoint', host };
  }
  if (registration.transport === 'tcp' && registration.host !== undefined) {
    const host = normaliseHost(registration.host);
    return allowed.has(host) ? null : { field: 'host', host };
  }
  // Redis, RabbitMQ and NATS participants have no address: the coordinator uses its own broker connection.
  return null;
}
