import { describe, expect, it } from 'vitest';
import { addressOfHost, classifyAddress, EgressPolicy, registrationAddressRefusal, type AddressClass } from './egress-policy.js';

describe('addressOfHost', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'], // one decimal number
    ['0x7f000001', '127.0.0.1'], // one hex number
    ['0x7F.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'], // octal
    ['127.1', '127.0.0.1'], // short forms
    ['127.0.1', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['2852039166', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['[::1]', '::1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['[fe80::1%25eth0]', 'fe80::1'], // a zone, however written, leaves the address
    ['fe80::1%eth0', 'fe80::1'],
  ])('reads %j as %j', (host, address) => {
    expect(addressOfHost(host)).toBe(address);
  });

  it.each(['localhost', 'bank-a', 'bank-a.example', '127.0.0.1.evil.example', 'user@127.0.0.1', '127.0.0.1/x', '1.2.3.4.5', ''])('reads %j as a name', (host) => {
    expect(addressOfHost(host)).toBeNull();
  });
});

describe('classifyAddress', () => {
  const cases: [string, AddressClass][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['2130706433', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['127.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped, dotted
    ['::ffff:7f00:1', 'loopback'], // IPv4-mapped, hex
    ['::127.0.0.1', 'loopback'], // IPv4-compatible
    ['64:ff9b::127.0.0.1', 'loopback'], // NAT64
    ['2002:7f00:1::', 'loopback'], // 6to4
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['2002:c0a8:101::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:a9fe:a9fe::', 'link-local'],
    ['2852039166', 'link-local'],
    ['0xa9fea9fe', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['::ffff:224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::ffff:255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['169.255.0.1', 'public'],
    ['2606:4700::1111', 'public'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::808:808', 'public'],
  ];
  it.each(cases)('%s is %s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
  });

  it('throws on a name', () => {
    expect(() => classifyAddress('localhost')).toThrow(/not an IP address/);
  });
});

describe('EgressPolicy', () => {
  it('parses keywords and CIDRs, any case, and describes them in a fixed order', () => {
    expect(EgressPolicy.parse(' Public ,10.1.0.0/16, loopback,fd00::/8').describe()).toBe('loopback, public, 10.1.0.0/16, fd00::/8');
  });

  it.each(['', 'intranet', '10.1.0.0', '10.1.0.0/33', 'fd00::/129', '10.1.0.0/16/2', 'loopback;private'])('refuses the setting %j', (spec) => {
    expect(() => EgressPolicy.parse(spec)).toThrow(/entry 1 .* is not loopback, private, public or a CIDR/);
  });

  it('defaults to everything without API keys and to public with them', () => {
    expect(EgressPolicy.defaultFor(false).describe()).toBe('loopback, private, public');
    expect(EgressPolicy.defaultFor(true).describe()).toBe('public');
  });

  it('never allows link-local, unspecified, multicast, broadcast or reserved addresses, whatever the setting', () => {
    const everything = EgressPolicy.parse('loopback,private,public,0.0.0.0/0,::/0');
    for (const ip of ['169.254.169.254', 'fd00:ec2::254', '::ffff:169.254.169.254', '0.0.0.0', '::', '224.0.0.1', 'ff02::1', '255.255.255.255', '240.0.0.1']) {
      // fd00:ec2::254 (the AWS IPv6 metadata address) sits in the unique-local range, yet is refused as metadata.
      expect(everything.refusal(ip)).toMatch(/refused by the egress policy: .* addresses are never called$/);
    }
    expect(everything.refusal('169.254.169.254')).toBe('address 169.254.169.254 refused by the egress policy: link-local addresses are never called');
    expect(everything.refusal('::ffff:a9fe:a9fe')).toBe('address ::ffff:a9fe:a9fe (169.254.169.254) refused by the egress policy: link-local addresses are never called');
  });

  it('allows the classes it names and refuses the others, naming the class and the setting', () => {
    const publicOnly = EgressPolicy.parse('public');
    expect(publicOnly.refusal('8.8.8.8')).toBeNull();
    expect(publicOnly.refusal('127.0.0.1')).toBe('address 127.0.0.1 refused by the egress policy: loopback is not in PARTICIPANT_NETWORKS (public)');
    expect(publicOnly.refusal('fd00:ec2::253')).toMatch(/private is not in PARTICIPANT_NETWORKS/);
    expect(publicOnly.refusal('::ffff:127.0.0.1')).toMatch(/loopback is not in/);
    const loopback = EgressPolicy.parse('loopback');
    expect(loopback.refusal('127.0.0.1')).toBeNull();
    expect(loopback.refusal('::1')).toBeNull();
    expect(loopback.refusal('::ffff:127.0.0.1')).toBeNull();
    expect(loopback.refusal('10.0.0.1')).toMatch(/private is not in PARTICIPANT_NETWORKS \(loopback\)/);
    expect(loopback.refusal('8.8.8.8')).toMatch(/public is not in/);
  });

  it('allows a CIDR on its own, also through an IPv4 address embedded in IPv6', () => {
    const subnet = EgressPolicy.parse('10.1.0.0/16,fd00:1::/64');
    expect(subnet.refusal('10.1.2.3')).toBeNull();
    expect(subnet.refusal('::ffff:10.1.2.3')).toBeNull();
    expect(subnet.refusal('10.2.0.1')).toMatch(/private is not in PARTICIPANT_NETWORKS \(10\.1\.0\.0\/16, fd00:1::\/64\)/);
    expect(subnet.refusal('fd00:1::5')).toBeNull();
    expect(subnet.refusal('fd00:2::5')).not.toBeNull();
  });
});

describe('registrationAddressRefusal', () => {
  const publicOnly = EgressPolicy.parse('public');

  it.each([
    'http://169.254.169.254/latest',
    'http://[::ffff:169.254.169.254]/',
    'http://2852039166/',
    'http://0xa9fea9fe/',
    'http://0/',
    'http://[::]/',
    'http://224.0.0.1/',
    'http://[fe80::1]/',
    'http://127.1/',
    'http://[::ffff:127.0.0.1]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://10.0.0.1:8080/tx',
  ])('refuses the endpoint %s', (endpoint) => {
    expect(registrationAddressRefusal(publicOnly, { transport: 'http', endpoint })).toMatchObject({ field: 'endpoint', reason: expect.stringMatching(/refused by the egress policy/) });
  });

  it('refuses a TCP host in any spelling, and lets names and broker transports through', () => {
    expect(registrationAddressRefusal(publicOnly, { transport: 'tcp', host: '2130706433' })).toMatchObject({ field: 'host' });
    expect(registrationAddressRefusal(publicOnly, { transport: 'tcp', host: '[::1]' })).toMatchObject({ field: 'host' });
    expect(registrationAddressRefusal(publicOnly, { transport: 'tcp', host: 'bank-a' })).toBeNull();
    expect(registrationAddressRefusal(publicOnly, { transport: 'http', endpoint: 'http://localhost:4001/tx' })).toBeNull();
    expect(registrationAddressRefusal(publicOnly, { transport: 'http', endpoint: 'https://8.8.8.8/tx' })).toBeNull();
    expect(registrationAddressRefusal(publicOnly, { transport: 'redis' })).toBeNull();
  });
});
