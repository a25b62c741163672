import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatSigningSecret } from '@nest-dtx/protocol';
import { isLoopbackHost } from '@nest-dtx/protocol';
import { checkParticipantOptions, resolveParticipantOptions } from './options-check.js';
import type { ParticipantModuleOptions } from './participant.options.js';

const secret = formatSigningSecret(randomBytes(32));
const base: ParticipantModuleOptions = { name: 'account', coordinatorUrl: 'http://127.0.0.1:7070', publicUrl: 'http://127.0.0.1:4001' };
const check = (over: Partial<ParticipantModuleOptions>) => () => checkParticipantOptions({ ...base, ...over });

describe('isLoopbackHost', () => {
  it('knows the loopback addresses, and nothing else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', 'localhost.', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '128.0.0.1', '127.0.0.1.example.com', 'localhost.example.com']) expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('checkParticipantOptions', () => {
  it('accepts the defaults: verification on, registering with the coordinator', () => {
    expect(check({})).not.toThrow();
    expect(check({ signingSecret: secret, registrationRefreshMs: 0 })).not.toThrow();
  });

  it('refuses verification off when the participant is reachable from other machines, naming where', () => {
    expect(check({ verifySignatures: false, publicUrl: 'http://10.0.0.5:4001' })).toThrow(
      'participant account: verifySignatures is off but it is reachable at http://10.0.0.5:4001/tx; anyone who reaches it could run its branches',
    );
    expect(check({ verifySignatures: false, transport: { kind: 'tcp', host: '0.0.0.0', port: 5001 } })).toThrow('reachable at tcp://0.0.0.0:5001;');
    // The Redis URL's password is not shown.
    expect(check({ verifySignatures: false, transport: { kind: 'redis', url: 'redis://:hunter2@redis.internal:6379' } })).toThrow(/reachable at redis:\/\/redis\.internal:6379;/);
    expect(check({ verifySignatures: false, transport: { kind: 'redis', url: 'redis://:hunter2@redis.internal:6379' } })).not.toThrow(/hunter2/);
  });

  it('counts the broker URL of a RabbitMQ or NATS participant as where it is reachable, without its credentials', () => {
    expect(check({ verifySignatures: false, transport: { kind: 'rabbitmq', url: 'amqp://dtx:hunter2@rabbit.internal:5672/vh' } })).toThrow(/reachable at amqp:\/\/rabbit\.internal:5672\/vh;/);
    expect(check({ verifySignatures: false, transport: { kind: 'rabbitmq', url: 'amqp://dtx:hunter2@rabbit.internal:5672/vh' } })).not.toThrow(/hunter2/);
    expect(check({ verifySignatures: false, transport: { kind: 'nats', url: 'nats://10.0.0.7:4222' } })).toThrow(/reachable at nats:\/\/10\.0\.0\.7:4222;/);
    expect(check({ verifySignatures: false, transport: { kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672' } })).not.toThrow();
    expect(check({ verifySignatures: false, transport: { kind: 'nats', url: 'nats://localhost:4222' } })).not.toThrow();
  });

  it('refuses a nats participant whose name makes no subject', () => {
    expect(() => checkParticipantOptions({ ...base, name: 'bank.', transport: { kind: 'nats', url: 'nats://127.0.0.1:4222' } })).toThrow(
      /^participant bank\.: on the nats transport its calls come on subject tx\.branch\.bank\., and a NATS subject has no empty token/,
    );
    expect(() => checkParticipantOptions({ ...base, name: 'bank.a', transport: { kind: 'nats', url: 'nats://127.0.0.1:4222' } })).not.toThrow();
    expect(() => checkParticipantOptions({ ...base, name: 'bank.', transport: { kind: 'rabbitmq', url: 'amqp://127.0.0.1' } })).not.toThrow();
  });

  it('allows verification off on loopback only', () => {
    expect(check({ verifySignatures: false })).not.toThrow();
    expect(check({ verifySignatures: false, publicUrl: 'http://localhost:4001', transport: { kind: 'tcp', host: '127.0.0.1', port: 5001 } })).not.toThrow();
    expect(check({ verifySignatures: false, publicUrl: undefined, register: false, transport: { kind: 'redis', url: 'redis://[::1]:6379' } })).not.toThrow();
  });

  it('refuses register: false with verification on and no signingSecret: it could never accept a call', () => {
    expect(check({ register: false })).toThrow('participant account: register is false and verifySignatures is on, but there is no signingSecret: it could never accept a call');
    expect(check({ register: false, signingSecret: secret })).not.toThrow();
  });

  it('refuses a signingSecret that is not one, in one line that does not quote it', () => {
    const bad = 'whsec_c2hvcnQ=';
    let message = '';
    try {
      checkParticipantOptions({ ...base, signingSecret: bad });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe('participant account: signingSecret is not valid (a signing secret holds 24 to 64 bytes)');
    expect(check({ signingSecret: secret.slice(6) })).toThrow(/starts with whsec_/);
  });

  it('refuses a refresh interval that would hammer the coordinator, and a missing address to register', () => {
    expect(check({ registrationRefreshMs: 10 })).toThrow('registrationRefreshMs must be 0 (never) or at least 1000');
    expect(check({ registrationRefreshMs: -1 })).toThrow(/registrationRefreshMs/);
    expect(check({ publicUrl: undefined })).toThrow('participant account: the http transport needs publicUrl');
  });

  it('takes schemaCheck fail or warn, and nothing else', () => {
    expect(check({ schemaCheck: 'fail' })).not.toThrow();
    expect(check({ schemaCheck: 'warn' })).not.toThrow();
    expect(check({ schemaCheck: 'off' as 'warn' })).toThrow("participant account: schemaCheck must be 'fail' or 'warn'");
  });
});

describe('resolveParticipantOptions', () => {
  it('takes the path the routes were declared at, refuses another one, and checks the rest', () => {
    expect(resolveParticipantOptions(base, 'tx')).toEqual({ ...base, path: 'tx' });
    expect(resolveParticipantOptions({ ...base, path: 'dtx' }, 'dtx').path).toBe('dtx');
    expect(() => resolveParticipantOptions({ ...base, path: 'dtx' }, 'tx')).toThrow(
      'participant account: the module\'s routes were declared at path tx (forRootAsync({ path })) but the options say dtx',
    );
    expect(() => resolveParticipantOptions({ ...base, register: false }, 'tx')).toThrow(/no signingSecret/);
  });
});
