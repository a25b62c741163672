import { describe, expect, it } from 'vitest';
import { natsBranchSubject, natsConnectionOptions, natsParticipantQueueGroup, natsSubjectProblem, rabbitmqParticipantQueue } from './brokers.js';

describe('broker names of a participant', () => {
  it('give each participant its own RabbitMQ queue, NATS subject and NATS queue group', () => {
    expect(rabbitmqParticipantQueue('account')).toBe('dtx.participant.account');
    expect(natsBranchSubject('account')).toBe('tx.branch.account');
    expect(natsParticipantQueueGroup('account')).toBe('dtx.participant.account');
    // Names are matched exactly, so no name's subject or queue is another's.
    const names = ['a', 'a.b', 'a-b', 'a:b', 'ab', 'b'];
    expect(new Set(names.map(natsBranchSubject)).size).toBe(names.length);
    expect(new Set(names.map(rabbitmqParticipantQueue)).size).toBe(names.length);
  });
});

describe('natsSubjectProblem', () => {
  it('accepts dotted subjects made of names', () => {
    for (const subject of ['orders', 'orders.created', 'tx.branch.bank-a', 'a:b.c_d-e', natsBranchSubject('x.y')]) expect(natsSubjectProblem(subject)).toBeNull();
  });

  it('refuses empty tokens, white space and wildcards', () => {
    for (const subject of ['', '.orders', 'orders.', 'orders..created', natsBranchSubject('x.')]) expect(natsSubjectProblem(subject)).toMatch(/empty/);
    expect(natsSubjectProblem('orders created')).toMatch(/white space/);
    expect(natsSubjectProblem('orders.*')).toMatch(/wildcard/);
    expect(natsSubjectProblem('orders.>')).toMatch(/wildcard/);
  });
});

describe('natsConnectionOptions', () => {
  it('reads the server, with the default port', () => {
    expect(natsConnectionOptions('nats://127.0.0.1:4222')).toEqual({ servers: 'nats://127.0.0.1:4222' });
    expect(natsConnectionOptions('nats://nats.internal')).toEqual({ servers: 'nats://nats.internal:4222' });
    expect(natsConnectionOptions('tls://nats.internal:4443')).toEqual({ servers: 'tls://nats.internal:4443' });
    expect(natsConnectionOptions('nats://[::1]:4222')).toEqual({ servers: 'nats://[::1]:4222' });
  });

  it('takes user and password, or a token, out of the URL', () => {
    expect(natsConnectionOptions('nats://dtx:p%40ss@127.0.0.1:4222')).toEqual({ servers: 'nats://127.0.0.1:4222', user: 'dtx', pass: 'p@ss' });
    expect(natsConnectionOptions('nats://s3cr3t@127.0.0.1:4222')).toEqual({ servers: 'nats://127.0.0.1:4222', token: 's3cr3t' });
  });

  it('refuses what is no NATS URL', () => {
    expect(() => natsConnectionOptions('http://127.0.0.1:4222')).toThrow(/nats:\/\/ or tls:\/\//);
    expect(() => natsConnectionOptions('not a url')).toThrow();
  });
});
