import { describe, expect, it } from 'vitest';
import { hostOutsideAllowList, parseHostEntry, parseParticipantHosts } from './participant-hosts.js';

describe('participant host allow-list', () => {
  const allowed = parseParticipantHosts('127.0.0.1, LocalHost,bank-a,[::1]');

  it('parses names and addresses, lower-case, without IPv6 brackets', () => {
    expect([...allowed.keys()]).toEqual(['127.0.0.1', 'localhost', 'bank-a', '::1']);
  });

  it.each(['', 'a b', 'http://bank-a', '-bank', 'bank-a:0', 'bank-a:65536', 'bank-a:', '[bank-a]:80', '[::1]:x', '::1:'])('refuses the entry %j', (entry) => {
    expect(() => parseParticipantHosts(`127.0.0.1,${entry}`)).toThrow(/entry 2/);
  });

  it.each([
    ['bank-a', { host: 'bank-a', port: null }],
    ['bank-a:8080', { host: 'bank-a', port: 8080 }],
    ['127.0.0.1:4001', { host: '127.0.0.1', port: 4001 }],
    ['[::1]:4001', { host: '::1', port: 4001 }],
    ['[::1]', { host: '::1', port: null }],
    // Without brackets an IPv6 address has no port: the last group is part of the address.
    ['fd00::1:4001', { host: 'fd00::1:4001', port: null }],
  ])('reads host and port of %j', (entry, expected) => {
    expect(parseHostEntry(entry)).toEqual(expected);
  });

  it('allows HTTP endpoints and TCP hosts on the list, whatever the case or port of an entry without a port', () => {
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'http://BANK-A:4001/tx' })).toBeNull();
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'https://[::1]:8443/tx' })).toBeNull();
    expect(hostOutsideAllowList(allowed, { transport: 'tcp', host: 'localhost', port: 5001 })).toBeNull();
  });

  it('allows only the listed ports of an entry with a port (80 and 443 when the URL has none)', () => {
    const withPorts = parseParticipantHosts('bank-a:8080,bank-a:8081,[::1]:4001,web:80,tls:443,any,any:9');
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'http://bank-a:8081/tx' })).toBeNull();
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'http://bank-a:5432/tx' })).toEqual({ field: 'endpoint', host: 'bank-a', port: 5432 });
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'http://[::1]:4001/tx' })).toBeNull();
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'http://[::1]:4002/tx' })).toEqual({ field: 'endpoint', host: '::1', port: 4002 });
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'http://web/tx' })).toBeNull();
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'https://tls/tx' })).toBeNull();
    expect(hostOutsideAllowList(withPorts, { transport: 'http', endpoint: 'http://tls/tx' })).toEqual({ field: 'endpoint', host: 'tls', port: 80 });
    // An entry without a port wins over one with a port.
    expect(hostOutsideAllowList(withPorts, { transport: 'tcp', host: 'any', port: 6379 })).toBeNull();
    expect(hostOutsideAllowList(withPorts, { transport: 'tcp', host: 'bank-a', port: 8080 })).toBeNull();
    expect(hostOutsideAllowList(withPorts, { transport: 'tcp', host: 'bank-a', port: 22 })).toEqual({ field: 'port', host: 'bank-a', port: 22 });
  });

  it('names the field and host of an address off the list', () => {
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'http://169.254.169.254/latest' })).toEqual({ field: 'endpoint', host: '169.254.169.254', port: 80 });
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'http://bank-a.evil.example/tx' })).toEqual({ field: 'endpoint', host: 'bank-a.evil.example', port: 80 });
    expect(hostOutsideAllowList(allowed, { transport: 'tcp', host: 'bank-b', port: 5001 })).toEqual({ field: 'host', host: 'bank-b', port: 5001 });
  });

  it('lets Redis participants (no address) and everyone without a list through', () => {
    expect(hostOutsideAllowList(allowed, { transport: 'redis' })).toBeNull();
    expect(hostOutsideAllowList(null, { transport: 'http', endpoint: 'http://anywhere/tx' })).toBeNull();
  });
});
