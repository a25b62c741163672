import { describe, expect, it } from 'vitest';
import { branchPatternFor, registrationAddress } from './participant-address.js';
import type { ParticipantModuleOptions } from './participant.options.js';

const base: ParticipantModuleOptions = { name: 'bank', coordinatorUrl: 'http://127.0.0.1:7070', publicUrl: 'http://127.0.0.1:4001' };

describe('registrationAddress', () => {
  it('registers no address on the broker transports: the coordinator uses its own connection', () => {
    expect(registrationAddress({ ...base, transport: { kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672' } })).toEqual({ transport: 'rabbitmq' });
    expect(registrationAddress({ ...base, transport: { kind: 'nats', url: 'nats://127.0.0.1:4222' } })).toEqual({ transport: 'nats' });
    expect(registrationAddress({ ...base, transport: { kind: 'redis', url: 'redis://127.0.0.1:6379' } })).toEqual({ transport: 'redis' });
  });

  it('registers the endpoint over HTTP and host and port over TCP', () => {
    expect(registrationAddress(base)).toEqual({ transport: 'http', endpoint: 'http://127.0.0.1:4001/tx' });
    expect(registrationAddress({ ...base, transport: { kind: 'tcp', host: '127.0.0.1', port: 5001 } })).toEqual({ transport: 'tcp', host: '127.0.0.1', port: 5001 });
  });
});

describe('branchPatternFor', () => {
  it('qualifies the pattern with the name where participants share a broker and no queue of their own', () => {
    expect(branchPatternFor('tcp', 'bank')).toBe('tx.branch');
    expect(branchPatternFor('rabbitmq', 'bank')).toBe('tx.branch');
    expect(branchPatternFor('redis', 'bank')).toEqual({ cmd: 'tx.branch', participant: 'bank' });
    expect(branchPatternFor('nats', 'bank')).toBe('tx.branch.bank');
  });
});
