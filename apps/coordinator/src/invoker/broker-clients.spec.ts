import { EventEmitter } from 'node:events';
import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutageEpisode, type OutageLine } from '../logging/outage-episode.js';
import { OutageAwareNatsClient, OutageAwareRmqClient } from './broker-clients.js';

/** Every line Nest's Logger writes (the clients' own), by level. */
function recordNestLines(): Record<'error' | 'warn' | 'log' | 'debug', string[]> {
  const lines = { error: [] as string[], warn: [] as string[], log: [] as string[], debug: [] as string[] };
  const text = (message: unknown): string => (typeof message === 'string' ? message : JSON.stringify(message));
  const recorder: LoggerService = {
    error: (message: unknown) => lines.error.push(text(message)),
    warn: (message: unknown) => lines.warn.push(text(message)),
    log: (message: unknown) => lines.log.push(text(message)),
    debug: (message: unknown) => lines.debug.push(text(message)),
    verbose: () => undefined,
  };
  Logger.overrideLogger(recorder);
  return lines;
}

function episode(dependency: string) {
  const lines: OutageLine[] = [];
  const outage = new OutageEpisode(dependency, (line) => lines.push(line));
  const above = () => lines.filter((line) => line.level !== 'debug').map((line) => [line.level, line.msg]);
  return { outage, above };
}

let nest: ReturnType<typeof recordNestLines>;
beforeEach(() => {
  nest = recordNestLines();
});
afterEach(() => {
  Logger.overrideLogger(new ConsoleLogger());
});

describe('OutageAwareNatsClient', () => {
  it('reports a dropped connection as one outage and moves the client error line about it to debug', async () => {
    const { outage, above } = episode('nats');
    const client = new OutageAwareNatsClient({ servers: 'nats://127.0.0.1:4222' }, outage);
    // What @nats-io/transport-node reports through status() when the server restarts.
    const connection = {
      async *status() {
        yield { type: 'disconnect', server: '127.0.0.1:4222' };
        yield { type: 'reconnecting' };
        yield { type: 'reconnecting' };
        yield { type: 'reconnect', server: '127.0.0.1:4222' };
        await Promise.resolve();
      },
    };
    await client.handleStatusUpdates(connection);
    expect(above()).toEqual([
      ['warn', 'nats unreachable: connection lost, reconnecting'],
      ['log', expect.stringMatching(/^nats reachable again after \d+\.\d s \(1 failure\)$/)],
    ]);
    expect(nest.error).toEqual([]);
    expect(nest.debug).toEqual(['NatsError: type: "disconnect".']);
  });

  it('leaves the server\'s other errors at error level: they are not an outage', async () => {
    const { outage, above } = episode('nats');
    const client = new OutageAwareNatsClient({ servers: 'nats://127.0.0.1:4222' }, outage);
    const connection = {
      async *status() {
        yield { type: 'error', error: 'Permissions Violation for Publish to "tx.branch.x"' };
        await Promise.resolve();
      },
    };
    await client.handleStatusUpdates(connection);
    expect(nest.error).toEqual(['NatsError: type: "error", error: "Permissions Violation for Publish to "tx.branch.x"".']);
    expect(above()).toEqual([]);
  });
});

/**
 * ClientRMQ's connect listener is private in Nest's typings; the test drives it as the connection
 * manager would, on a client past its first connection (which would open a channel).
 */
interface RmqListeners {
  isInitialConnect: boolean;
  registerDisconnectListener(client: EventEmitter): void;
  registerConnectListener(client: EventEmitter): void;
}

function connectedRmqClient(outage: OutageEpisode, queue: string): { client: OutageAwareRmqClient; manager: EventEmitter } {
  const client = new OutageAwareRmqClient({ urls: ['amqp://127.0.0.1:5672'], queue }, outage, queue);
  const manager = new EventEmitter();
  const listeners = client as unknown as RmqListeners;
  listeners.isInitialConnect = false;
  listeners.registerDisconnectListener(manager);
  listeners.registerConnectListener(manager);
  manager.emit('connect');
  return { client, manager };
}

describe('OutageAwareRmqClient', () => {
  it('reports a dropped connection as one outage and moves the client error lines about it to debug', () => {
    const { outage, above } = episode('rabbitmq');
    const { manager } = connectedRmqClient(outage, 'dtx.participant.bank-a');
    // amqp-connection-manager emits 'disconnect' once a live connection drops, then retries quietly.
    manager.emit('disconnect', { err: new Error('Socket closed abruptly during opening handshake') });
    manager.emit('connect');
    expect(above()).toEqual([
      ['warn', 'rabbitmq unreachable: dtx.participant.bank-a: connection lost, reconnecting'],
      ['log', expect.stringMatching(/^rabbitmq reachable again after \d+\.\d s \(1 failure\)$/)],
    ]);
    expect(nest.error).toEqual([]);
    expect(nest.debug).toContain('Disconnected from RMQ. Trying to reconnect.');
    expect(nest.debug.join('\n')).toContain('Socket closed abruptly');
  });

  it('keeps error lines written while connected at error level', () => {
    const { outage } = episode('rabbitmq');
    const { client, manager } = connectedRmqClient(outage, 'q');
    client.registerErrorListener(manager);
    manager.emit('error', new Error('a bug'));
    expect(nest.error).toHaveLength(1);
  });
});
