import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatSigningSecret } from '@nest-dtx/protocol';
import { SigningKeys } from './signing-keys.js';

const a = randomBytes(32);
const b = randomBytes(32);

describe('SigningKeys', () => {
  it('holds no key without the option and before any registration', () => {
    expect(new SigningKeys({}).current()).toEqual([]);
  });

  it('verifies with the signingSecret option until the coordinator gives a secret, then with that one only', () => {
    const keys = new SigningKeys({ signingSecret: formatSigningSecret(a) });
    expect(keys.current()).toEqual([a]);
    expect(keys.hasCoordinatorSecret()).toBe(false);
    expect(keys.acceptFromCoordinator(formatSigningSecret(b))).toBe('first');
    expect(keys.current()).toEqual([b]);
    expect(keys.hasCoordinatorSecret()).toBe(true);
  });

  it('keeps only the newest secret: a rotated-out one stops working at once', () => {
    const keys = new SigningKeys({});
    expect(keys.acceptFromCoordinator(formatSigningSecret(a))).toBe('first');
    expect(keys.acceptFromCoordinator(formatSigningSecret(a))).toBe('unchanged');
    expect(keys.acceptFromCoordinator(formatSigningSecret(b))).toBe('rotated');
    expect(keys.current()).toEqual([b]);
  });

  it('refuses an answer that is no secret, without quoting it, and keeps the key it had', () => {
    const keys = new SigningKeys({});
    keys.acceptFromCoordinator(formatSigningSecret(a));
    const bad = `whsec_${randomBytes(4).toString('base64')}`;
    let message = '';
    try {
      keys.acceptFromCoordinator(bad);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/24 to 64 bytes/);
    expect(message).not.toContain(bad.slice(6));
    expect(keys.current()).toEqual([a]);
  });
});
