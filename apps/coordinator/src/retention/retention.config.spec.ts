import { describe, expect, it } from 'vitest';
import { loadCoordinatorEnv } from '../config/coordinator.config.js';

describe('retention configuration', () => {
  it('defaults to 7 days in batches of 500', () => {
    const env = loadCoordinatorEnv({});
    expect([env.RETENTION_DAYS, env.RETENTION_BATCH_SIZE]).toEqual([7, 500]);
  });

  it('accepts RETENTION_DAYS=0 (retention off)', () => {
    expect(loadCoordinatorEnv({ RETENTION_DAYS: '0' }).RETENTION_DAYS).toBe(0);
  });

  it('refuses a negative age and an empty batch, naming the variables', () => {
    expect(() => loadCoordinatorEnv({ RETENTION_DAYS: '-1' })).toThrow(/RETENTION_DAYS/);
    expect(() => loadCoordinatorEnv({ RETENTION_BATCH_SIZE: '0' })).toThrow(/RETENTION_BATCH_SIZE/);
  });
});
