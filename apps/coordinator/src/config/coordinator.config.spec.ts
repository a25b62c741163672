import { describe, expect, it } from 'vitest';
import { CoordinatorConfig, httpIdleTimeoutMs, loadCoordinatorEnv } from './coordinator.config.js';

const KEYS = 'admin:admin-key-0123456789,client:client-key-0123456789';

describe('security configuration', () => {
  it('defaults: no keys, loopback, 60000 client requests a minute, any participant host', () => {
    const config = new CoordinatorConfig(loadCoordinatorEnv({}));
    expect(config.apiKeys.enabled).toBe(false);
    expect(config.rateLimitPerMinute).toBe(60_000);
    expect(config.participantHosts).toBeNull();
    // Without keys the coordinator listens on loopback only: a local trial calls local participants.
    expect(config.participantNetworks.describe()).toBe('loopback, private, public');
  });

  it('calls public addresses only by default once API keys are set, and reads PARTICIPANT_NETWORKS', () => {
    expect(new CoordinatorConfig(loadCoordinatorEnv({ API_KEYS: KEYS })).participantNetworks.describe()).toBe('public');
    const config = new CoordinatorConfig(loadCoordinatorEnv({ API_KEYS: KEYS, PARTICIPANT_NETWORKS: 'Private, 10.1.0.0/16' }));
    expect(config.participantNetworks.describe()).toBe('private, 10.1.0.0/16');
    expect(() => loadCoordinatorEnv({ PARTICIPANT_NETWORKS: 'loopback,intranet' })).toThrow(/^invalid configuration: PARTICIPANT_NETWORKS: entry 2/);
  });

  it('refuses a non-loopback HOST without keys, and allows it with keys', () => {
    expect(() => loadCoordinatorEnv({ HOST: '0.0.0.0' })).toThrow(/^invalid configuration: HOST 0\.0\.0\.0 is reachable from other machines; set API_KEYS/);
    expect(loadCoordinatorEnv({ HOST: '0.0.0.0', API_KEYS: KEYS }).HOST).toBe('0.0.0.0');
    expect(loadCoordinatorEnv({ HOST: 'localhost' }).HOST).toBe('localhost');
  });

  it('explains bad API_KEYS, PARTICIPANT_HOSTS and RATE_LIMIT_PER_MINUTE in one line', () => {
    expect(() => loadCoordinatorEnv({ API_KEYS: 'admin:short' })).toThrow(/^invalid configuration: API_KEYS: entry 1: a key must be/);
    expect(() => loadCoordinatorEnv({ PARTICIPANT_HOSTS: 'bank a' })).toThrow(/^invalid configuration: PARTICIPANT_HOSTS: entry 1/);
    expect(() => loadCoordinatorEnv({ RATE_LIMIT_PER_MINUTE: '-1' })).toThrow(/^invalid configuration: RATE_LIMIT_PER_MINUTE/);
  });

  it('reads keys, hosts and the rate limit', () => {
    const config = new CoordinatorConfig(loadCoordinatorEnv({ API_KEYS: KEYS, PARTICIPANT_HOSTS: 'Bank-A,127.0.0.1:4001', RATE_LIMIT_PER_MINUTE: '0' }));
    expect(config.apiKeys.size).toBe(2);
    expect([...(config.participantHosts ?? [])]).toEqual([['bank-a', null], ['127.0.0.1', new Set([4001])]]);
    expect(config.rateLimitPerMinute).toBe(0);
  });
});

describe('connection timeouts and the refused-request limit', () => {
  it('defaults: headers 10 s, request 30 s, keep-alive 5 s, idle 60 s, 100 headers, 60 refusals a minute', () => {
    const env = loadCoordinatorEnv({});
    expect([env.HTTP_HEADERS_TIMEOUT_MS, env.HTTP_REQUEST_TIMEOUT_MS, env.HTTP_KEEP_ALIVE_TIMEOUT_MS, httpIdleTimeoutMs(env), env.HTTP_MAX_HEADERS]).toEqual([10_000, 30_000, 5_000, 60_000, 100]);
    expect(new CoordinatorConfig(env).authFailureLimitPerMinute).toBe(60);
  });

  it('keeps the idle timeout past the longest silent answer (wait: true, a branch call)', () => {
    expect(httpIdleTimeoutMs(loadCoordinatorEnv({ WAIT_MAX_MS: '90000' }))).toBe(100_000);
    expect(() => loadCoordinatorEnv({ HTTP_IDLE_TIMEOUT_MS: '30000' })).toThrow(/^invalid configuration: HTTP_IDLE_TIMEOUT_MS \(30000\) must exceed WAIT_MAX_MS/);
    expect(httpIdleTimeoutMs(loadCoordinatorEnv({ HTTP_IDLE_TIMEOUT_MS: '3000', WAIT_MAX_MS: '1000', CALL_TIMEOUT_MS: '1000' }))).toBe(3_000);
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    expect(() => loadCoordinatorEnv({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '2000' })).toThrow(/HTTP_HEADERS_TIMEOUT_MS \(5000\) must not exceed/);
  });
});

describe('MIGRATIONS_RUN', () => {
  it('defaults to migrating at start-up', () => {
    expect(new CoordinatorConfig(loadCoordinatorEnv({})).migrationsRun).toBe(true);
  });

  it('reads true/false (and 1/0), any case', () => {
    expect(loadCoordinatorEnv({ MIGRATIONS_RUN: 'false' }).MIGRATIONS_RUN).toBe(false);
    expect(loadCoordinatorEnv({ MIGRATIONS_RUN: 'FALSE' }).MIGRATIONS_RUN).toBe(false);
    expect(loadCoordinatorEnv({ MIGRATIONS_RUN: '0' }).MIGRATIONS_RUN).toBe(false);
    expect(loadCoordinatorEnv({ MIGRATIONS_RUN: 'true' }).MIGRATIONS_RUN).toBe(true);
    expect(loadCoordinatorEnv({ MIGRATIONS_RUN: '1' }).MIGRATIONS_RUN).toBe(true);
  });

  it('refuses anything else in one line', () => {
    expect(() => loadCoordinatorEnv({ MIGRATIONS_RUN: 'no' })).toThrow(/^invalid configuration: MIGRATIONS_RUN: MIGRATIONS_RUN must be true or false$/);
  });
});

describe('DATABASE_CONNECT_TIMEOUT_MS', () => {
  it('defaults to two minutes, long enough for a Postgres restart', () => {
    expect(loadCoordinatorEnv({}).DATABASE_CONNECT_TIMEOUT_MS).toBe(120_000);
  });

  it('reads milliseconds, 0 meaning no wait', () => {
    expect(loadCoordinatorEnv({ DATABASE_CONNECT_TIMEOUT_MS: '0' }).DATABASE_CONNECT_TIMEOUT_MS).toBe(0);
    expect(loadCoordinatorEnv({ DATABASE_CONNECT_TIMEOUT_MS: '300000' }).DATABASE_CONNECT_TIMEOUT_MS).toBe(300_000);
  });

  it('refuses a negative, fractional or non-numeric value, or more than an hour, in one line', () => {
    for (const value of ['-1', '1.5', 'soon', '3600001']) {
      expect(() => loadCoordinatorEnv({ DATABASE_CONNECT_TIMEOUT_MS: value }), value).toThrow(/^invalid configuration: DATABASE_CONNECT_TIMEOUT_MS: /);
    }
  });
});

describe('RABBITMQ_URL and NATS_URL', () => {
  it('are optional: unset, the coordinator has no broker connection', () => {
    const config = new CoordinatorConfig(loadCoordinatorEnv({}));
    expect(config.rabbitmqUrl).toBeUndefined();
    expect(config.natsUrl).toBeUndefined();
  });

  it('read an amqp(s):// and a nats:// (or tls://) URL', () => {
    const config = new CoordinatorConfig(loadCoordinatorEnv({ RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:5672', NATS_URL: 'nats://127.0.0.1:4222' }));
    expect(config.rabbitmqUrl).toBe('amqp://guest:guest@127.0.0.1:5672');
    expect(config.natsUrl).toBe('nats://127.0.0.1:4222');
    expect(loadCoordinatorEnv({ RABBITMQ_URL: 'amqps://broker.internal/vhost' }).RABBITMQ_URL).toBe('amqps://broker.internal/vhost');
    expect(loadCoordinatorEnv({ NATS_URL: 'tls://nats.internal:4443' }).NATS_URL).toBe('tls://nats.internal:4443');
  });

  it('refuse another scheme or no host in one line naming the variable', () => {
    expect(() => loadCoordinatorEnv({ RABBITMQ_URL: 'http://127.0.0.1:5672' })).toThrow(/^invalid configuration: RABBITMQ_URL: RABBITMQ_URL must be an amqp:\/\/ or amqps:\/\/ URL$/);
    expect(() => loadCoordinatorEnv({ RABBITMQ_URL: 'amqp://' })).toThrow(/^invalid configuration: RABBITMQ_URL/);
    expect(() => loadCoordinatorEnv({ NATS_URL: '127.0.0.1:4222' })).toThrow(/^invalid configuration: NATS_URL: NATS_URL must be a nats:\/\//);
    expect(() => loadCoordinatorEnv({ NATS_URL: 'nats://' })).toThrow(/^invalid configuration: NATS_URL/);
    expect(() => loadCoordinatorEnv({ NATS_URL: 'nats://exa mple:4222' })).toThrow(/^invalid configuration: NATS_URL/);
  });
});

describe('limits and owner-scoped keys', () => {
  it('defaults: 100 branches a transaction, 100 participants a key, 100 actions a participant; scoping only with keys', () => {
    const env = loadCoordinatorEnv({});
    expect([env.MAX_BRANCHES_PER_TRANSACTION, env.MAX_PARTICIPANTS_PER_KEY, env.MAX_ACTIONS_PER_PARTICIPANT]).toEqual([100, 100, 100]);
    expect(new CoordinatorConfig(env).ownerScopedKeys).toBe(false);
    expect(new CoordinatorConfig(loadCoordinatorEnv({ API_KEYS: KEYS })).ownerScopedKeys).toBe(true);
    expect(new CoordinatorConfig(loadCoordinatorEnv({ API_KEYS: KEYS, OWNER_SCOPED_KEYS: 'false' })).ownerScopedKeys).toBe(false);
  });

  it('refuses limits outside their range, in one line', () => {
    expect(() => loadCoordinatorEnv({ MAX_BRANCHES_PER_TRANSACTION: '1001' })).toThrow(/^invalid configuration: MAX_BRANCHES_PER_TRANSACTION/);
    expect(() => loadCoordinatorEnv({ MAX_PARTICIPANTS_PER_KEY: '0' })).toThrow(/^invalid configuration: MAX_PARTICIPANTS_PER_KEY/);
    expect(() => loadCoordinatorEnv({ MAX_ACTIONS_PER_PARTICIPANT: '201' })).toThrow(/^invalid configuration: MAX_ACTIONS_PER_PARTICIPANT/);
    expect(() => loadCoordinatorEnv({ OWNER_SCOPED_KEYS: 'maybe' })).toThrow(/^invalid configuration: OWNER_SCOPED_KEYS: .*must be true or false/);
  });
});

describe('TRACE_UI_URL', () => {
  const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

  it('is optional: unset, no trace has a link', () => {
    const config = new CoordinatorConfig(loadCoordinatorEnv({}));
    expect(config.env.TRACE_UI_URL).toBeUndefined();
    expect(config.traceUrl(TRACE_ID)).toBeNull();
  });

  it('fills {traceId} in (every one of them), and links nothing for a transaction without a trace', () => {
    const jaeger = new CoordinatorConfig(loadCoordinatorEnv({ TRACE_UI_URL: 'http://localhost:16686/trace/{traceId}' }));
    expect(jaeger.traceUrl(TRACE_ID)).toBe(`http://localhost:16686/trace/${TRACE_ID}`);
    expect(jaeger.traceUrl(null)).toBeNull();
    const tempo = 'https://grafana.example/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22{traceId}%22%7D%5D%7D&trace={traceId}';
    expect(new CoordinatorConfig(loadCoordinatorEnv({ TRACE_UI_URL: tempo })).traceUrl(TRACE_ID)).toBe(
      `https://grafana.example/explore?left=%7B%22queries%22:%5B%7B%22query%22:%22${TRACE_ID}%22%7D%5D%7D&trace=${TRACE_ID}`,
    );
  });

  it('refuses another scheme, no {traceId}, white space or no URL, in one line', () => {
    for (const value of ['javascript:alert({traceId})', 'ftp://traces/{traceId}', 'http://localhost:16686/trace/', 'http://jaeger/trace/{traceId} now', '/trace/{traceId}']) {
      expect(() => loadCoordinatorEnv({ TRACE_UI_URL: value }), value).toThrow(/^invalid configuration: TRACE_UI_URL: TRACE_UI_URL must be an http:\/\/ or https:\/\/ URL with \{traceId\} in it$/);
    }
    expect(() => loadCoordinatorEnv({ TRACE_UI_URL: 'http://[::1/{traceId}' })).toThrow(/^invalid configuration: TRACE_UI_URL: /);
    expect(() => loadCoordinatorEnv({ TRACE_UI_URL: `http://jaeger/trace/{traceId}?${'x'.repeat(2048)}` })).toThrow(/^invalid configuration: TRACE_UI_URL: .*2048/);
  });
});
