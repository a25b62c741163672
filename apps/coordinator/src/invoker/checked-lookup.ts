import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { EgressPolicy } from '../participants/egress-policy.js';

/**
 * Resolves a participant's host name and checks every address against the egress policy; the
 * connection goes to the addresses checked, never to a second resolution. One refused address
 * refuses them all: a name that mixes an allowed address with, say, 169.254.169.254 is not a
 * participant but an attempt to reach the second one.
 */
export async function resolveChecked(policy: EgressPolicy, hostname: string, family: 0 | 4 | 6 = 0): Promise<dns.LookupAddress[]> {
  const addresses = await dns.promises.lookup(hostname, { all: true, family });
  for (const { address } of addresses) {
    const refusal = policy.refusal(address);
    if (refusal !== null) throw new Error(`${refusal} (${hostname} resolves to it)`);
  }
  return addresses;
}

/** `resolveChecked` as the `lookup` of a socket or an http/https Agent, in both of its answer shapes. */
export function checkedLookup(policy: EgressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    resolveChecked(policy, hostname, family).then(
      (addresses) => {
        // net asks for every address (`all`) when it races IPv4 and IPv6, otherwise for one.
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}
