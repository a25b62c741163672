import { describe, expect, it } from 'vitest';
import { loadServiceEnv, participantTransport } from './service-env.js';

const env = (over: Record<string, string>) => loadServiceEnv({}, { DATABASE_URL: 'postgres://127.0.0.1/bank', ...over });

describe('participantTransport of a demo service', () => {
  it('picks RabbitMQ or NATS with the broker URL from the environment', () => {
    expect(participantTransport(env({ TRANSPORT: 'rabbitmq', RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672' }))).toEqual({ kind: 'rabbitmq', url: 'amqp://guest:guest@127.0.0.1:5672' });
    expect(participantTransport(env({ TRANSPORT: 'nats', NATS_URL: 'nats://127.0.0.1:4222' }))).toEqual({ kind: 'nats', url: 'nats://127.0.0.1:4222' });
  });

  it('says in one line which URL a broker transport lacks, and refuses a URL of another scheme', () => {
    expect(() => participantTransport(env({ TRANSPORT: 'rabbitmq' }))).toThrow('invalid configuration: TRANSPORT=rabbitmq needs RABBITMQ_URL');
    expect(() => participantTransport(env({ TRANSPORT: 'nats' }))).toThrow('invalid configuration: TRANSPORT=nats needs NATS_URL');
    expect(() => env({ TRANSPORT: 'nats', NATS_URL: 'http://127.0.0.1:4222' })).toThrow(/^invalid configuration: NATS_URL/);
    expect(() => env({ TRANSPORT: 'kafka' })).toThrow(/^invalid configuration: TRANSPORT/);
  });
});
