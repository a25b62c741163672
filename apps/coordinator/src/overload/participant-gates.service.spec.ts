import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CoordinatorConfig, loadCoordinatorEnv } from '../config/coordinator.config.js';
import type { Permit } from './participant-gate.js';
import { ParticipantGates } from './participant-gates.service.js';

const gatesWith = (env: Record<string, string>) => new ParticipantGates(new CoordinatorConfig(loadCoordinatorEnv({ INSTANCE_ID: 'spec', ...env })));

/** Lets resolved promises run their callbacks. */
const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ParticipantGates: admission control', () => {
  it('admits while the named participants have room, and refuses past ADMISSION_QUEUE_LIMIT waiting calls, naming the participant', async () => {
    const gates = gatesWith({ PARTICIPANT_MAX_IN_FLIGHT: '1', PARTICIPANT_ADAPTIVE_LIMIT: 'false', ADMISSION_QUEUE_LIMIT: '3' });
    const gate = gates.gate('Bank-A');
    expect(gates.admissionRefusal(['bank-a', 'bank-b'])).toBeNull();
    void gate.enter(60_000);
    for (let i = 0; i < 3; i++) void gate.enter(60_000);
    await flush();
    expect(gate.queued).toBe(3);
    const refusal = gates.admissionRefusal(['bank-b', 'BANK-A']);
    expect(refusal?.reason).toMatch(/participant bank-a has 3 calls waiting/);
    expect(refusal?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // Another participant is not concerned.
    expect(gates.admissionRefusal(['bank-b'])).toBeNull();
  });

  it('refuses every begin past ADMISSION_BACKLOG_LIMIT calls waiting on the instance in all', async () => {
    const gates = gatesWith({ PARTICIPANT_MAX_IN_FLIGHT: '1', PARTICIPANT_ADAPTIVE_LIMIT: 'false', ADMISSION_QUEUE_LIMIT: '0', ADMISSION_BACKLOG_LIMIT: '4' });
    for (const name of ['a', 'b']) {
      const gate = gates.gate(name);
      for (let i = 0; i < 3; i++) void gate.enter(60_000);
    }
    await flush();
    expect(gates.backlog()).toBe(4);
    expect(gates.admissionRefusal(['c'])?.reason).toMatch(/4 participant calls waiting/);
  });

  it('refuses begins naming a participant while its breaker is open, and admits again once a probe may go (half-open)', async () => {
    const gates = gatesWith({ BREAKER_FAILURE_THRESHOLD: '2', BREAKER_OPEN_MS: '3000', BREAKER_OPEN_MAX_MS: '3000' });
    const gate = gates.gate('bank-a');
    for (let i = 0; i < 2; i++) {
      const permit = (await gate.enter(5_000)) as Permit;
      permit.release('transient', 5);
    }
    expect(gate.snapshot().breaker).toBe('open');
    const refusal = gates.admissionRefusal(['bank-a']);
    expect(refusal?.reason).toMatch(/circuit breaker is open/);
    expect(refusal?.retryAfterSeconds).toBe(3);
    vi.advanceTimersByTime(3_001);
    expect(gate.snapshot().breaker).toBe('half_open');
    expect(gates.admissionRefusal(['bank-a'])).toBeNull();
  });

  it('refuses a begin when the queue, at the participant\'s recent answer time, would hold a new call over half CALL_TIMEOUT_MS', async () => {
    const gates = gatesWith({ PARTICIPANT_MAX_IN_FLIGHT: '1', PARTICIPANT_ADAPTIVE_LIMIT: 'false', ADMISSION_QUEUE_LIMIT: '1000', CALL_TIMEOUT_MS: '1000' });
    const gate = gates.gate('slow');
    const first = (await gate.enter(60_000)) as Permit;
    // Two waiting behind a participant that takes 400 ms an answer: about 800 ms of waiting for the next.
    const waiting = [gate.enter(60_000), gate.enter(60_000)];
    first.release('ok', 400);
    await flush();
    expect(gates.admissionRefusal(['slow'])).toBeNull();
    void gate.enter(60_000);
    void gate.enter(60_000);
    await flush();
    expect(gate.queued).toBe(3);
    expect(gates.admissionRefusal(['slow'])?.reason).toMatch(/more than half of CALL_TIMEOUT_MS/);
    void waiting;
  });
});
