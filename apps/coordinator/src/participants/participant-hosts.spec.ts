import { describe, expect, it } from 'vitest';
import { hostOutsideAllowList, parseParticipantHosts } from './participant-hosts.js';

describe('participant host allow-list', () => {
  const allowed = parseParticipantHosts('127.0.0.1, LocalHost,bank-a,[::1]');

  it('parses names and addresses, lower-case, without IPv6 brackets', () => {
    expect([...allowed]).toEqual(['127.0.0.1', 'localhost', 'bank-a', '::1']);
  });

  it.each(['', 'a b', 'http://bank-a', 'bank-a:4001', '-bank'])('refuses the entry %j', (entry) => {
    expect(() => parseParticipantHosts(`127.0.0.1,${entry}`)).toThrow(/entry 2/);
  });

  it('allows HTTP endpoints and TCP hosts on the list, whatever the case or port', () => {
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'http://BANK-A:4001/tx' })).toBeNull();
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'https://[::1]:8443/tx' })).toBeNull();
    expect(hostOutsideAllowList(allowed, { transport: 'tcp', host: 'localhost' })).toBeNull();
  });

  it('names the field and host of an address off the list', () => {
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'http://169.254.169.254/latest' })).toEqual({ field: 'endpoint', host: '169.254.169.254' });
    expect(hostOutsideAllowList(allowed, { transport: 'http', endpoint: 'http://bank-a.evil.example/tx' })).toEqual({ field: 'endpoint', host: 'bank-a.evil.example' });
    expect(hostOutsideAllowList(allowed, { transport: 'tcp', host: 'bank-b' })).toEqual({ field: 'host', host: 'bank-b' });
  });

  it('lets Redis participants (no address) and everyone without a list through', () => {
    expect(hostOutsideAllowList(allowed, { transport: 'redis' })).toBeNull();
    expect(hostOutsideAllowList(null, { transport: 'http', endpoint: 'http://anywhere/tx' })).toBeNull();
  });
});
