import { describe, expect, it } from 'vitest';
import { healthProblem } from './participant-health.js';
import type { ParticipantRegistrationState } from './registration.service.js';

const state = (over: Partial<ParticipantRegistrationState>): ParticipantRegistrationState => ({ state: 'registered', registeredAt: new Date(), lastError: null, ...over });
const listed = { ok: true as const, listed: true };

describe('healthProblem', () => {
  it('is healthy when registered (or not registering) and listed by a coordinator that answered', () => {
    expect(healthProblem(state({}), listed, 'bank')).toBeNull();
    expect(healthProblem(state({ state: 'disabled' }), listed, 'bank')).toBeNull();
  });

  it('says why otherwise, the unreachable coordinator first', () => {
    expect(healthProblem(state({ state: 'pending' }), { ok: false, reason: 'coordinator unreachable at http://127.0.0.1:1' }, 'bank')).toBe(
      'coordinator unreachable at http://127.0.0.1:1',
    );
    expect(healthProblem(state({ state: 'pending', lastError: 'ECONNREFUSED' }), listed, 'bank')).toBe('not registered with the coordinator yet (last attempt: ECONNREFUSED)');
    expect(healthProblem(state({ state: 'refused', lastError: 'refused (403 FORBIDDEN)' }), listed, 'bank')).toBe('the coordinator refused the registration: refused (403 FORBIDDEN)');
    expect(healthProblem(state({}), { ok: true, listed: false }, 'bank')).toBe('the coordinator does not list participant bank');
    expect(healthProblem(state({ state: 'disabled' }), { ok: true, listed: false }, 'bank')).toBe('the coordinator does not list participant bank');
  });
});
