import { describe, expect, it } from 'vitest';
import { ErrorCode, type Mode, type Transport } from '@nest-dtx/protocol';
import { brokerRegistrationProblem, type ConfiguredBrokers } from './broker-registration.js';

const ALL: ConfiguredBrokers = { redis: true, rabbitmq: true, nats: true };
const NONE: ConfiguredBrokers = { redis: false, rabbitmq: false, nats: false };

const registration = (transport: Transport, over: { name?: string; publish?: boolean; actions?: { name: string; modes: Mode[] }[] } = {}) => ({
  name: over.name ?? 'orders',
  transport,
  publish: over.publish,
  actions: over.actions ?? [{ name: 'order.created', modes: ['msg'] as Mode[] }],
});

describe('brokerRegistrationProblem', () => {
  it('accepts every transport on a coordinator that has every broker, and http/tcp on one that has none', () => {
    for (const transport of ['http', 'tcp', 'redis', 'rabbitmq', 'nats'] as const) expect(brokerRegistrationProblem(registration(transport), ALL)).toBeNull();
    for (const transport of ['http', 'tcp'] as const) expect(brokerRegistrationProblem(registration(transport), NONE)).toBeNull();
  });

  it('refuses a broker transport this coordinator has no URL for, naming the field transport and the variable', () => {
    expect(brokerRegistrationProblem(registration('rabbitmq'), { ...ALL, rabbitmq: false })).toEqual({
      code: ErrorCode.TRANSPORT_NOT_CONFIGURED,
      field: 'transport',
      message: 'transport rabbitmq needs a coordinator started with RABBITMQ_URL; this one has no RabbitMQ connection',
    });
    expect(brokerRegistrationProblem(registration('nats', { publish: true }), { ...ALL, nats: false })).toMatchObject({ code: ErrorCode.TRANSPORT_NOT_CONFIGURED, field: 'transport', message: expect.stringContaining('NATS_URL') });
    // Redis keeps the code it always had.
    expect(brokerRegistrationProblem(registration('redis'), NONE)).toMatchObject({ code: ErrorCode.VALIDATION_FAILED, field: 'transport' });
  });

  it('takes publish only with rabbitmq or nats', () => {
    for (const transport of ['http', 'tcp', 'redis'] as const) {
      expect(brokerRegistrationProblem(registration(transport, { publish: true }), ALL)).toMatchObject({ code: ErrorCode.VALIDATION_FAILED, field: 'publish' });
      expect(brokerRegistrationProblem(registration(transport, { publish: false }), ALL)).toBeNull();
    }
    for (const transport of ['rabbitmq', 'nats'] as const) expect(brokerRegistrationProblem(registration(transport, { publish: true }), ALL)).toBeNull();
  });

  it('takes only mode msg on the actions of a publish target, naming the action at fault', () => {
    const actions: { name: string; modes: Mode[] }[] = [
      { name: 'fine', modes: ['msg'] },
      { name: 'mixed', modes: ['msg', 'saga'] },
    ];
    expect(brokerRegistrationProblem(registration('rabbitmq', { publish: true, actions }), ALL)).toMatchObject({ code: ErrorCode.VALIDATION_FAILED, field: 'actions.1.modes' });
    expect(brokerRegistrationProblem(registration('nats', { publish: true, actions: [{ name: 'x', modes: ['tcc'] }] }), ALL)).toMatchObject({ field: 'actions.0.modes' });
    // A request/reply participant of a broker transport takes any mode.
    expect(brokerRegistrationProblem(registration('rabbitmq', { actions: [{ name: 'debit', modes: ['tcc', '2pc', 'saga', 'msg'] }] }), ALL)).toBeNull();
  });

  it('on NATS refuses names that make no subject: the action of a publish target, the name of a request/reply participant', () => {
    expect(brokerRegistrationProblem(registration('nats', { publish: true, actions: [{ name: 'ok.subject', modes: ['msg'] }, { name: 'orders..created', modes: ['msg'] }] }), ALL)).toMatchObject({
      code: ErrorCode.VALIDATION_FAILED,
      field: 'actions.1.name',
    });
    expect(brokerRegistrationProblem(registration('nats', { name: 'bank.' }), ALL)).toMatchObject({ code: ErrorCode.VALIDATION_FAILED, field: 'name', message: expect.stringContaining('tx.branch.bank.') });
    expect(brokerRegistrationProblem(registration('nats', { name: 'bank.a' }), ALL)).toBeNull();
    // A RabbitMQ queue may be named anything a name can be.
    expect(brokerRegistrationProblem(registration('rabbitmq', { name: 'bank.', publish: true, actions: [{ name: '.odd..', modes: ['msg'] }] }), ALL)).toBeNull();
  });
});
