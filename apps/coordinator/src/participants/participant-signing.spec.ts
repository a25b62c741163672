import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSigningSecret } from '@nest-dtx/protocol';
import type { ParticipantRecord } from '../store/records.js';
import { deriveParticipantKey, ParticipantSigning } from './participant-signing.js';

const coordinatorSecret = randomBytes(32);
const record = (over: Partial<ParticipantRecord> = {}): ParticipantRecord => ({
  name: 'bank-a', transport: 'http', endpoint: 'http://127.0.0.1:1/tx', host: null, port: null, publish: false, actions: [],
  ownerKeyDigest: null, secretGeneration: 1, previousSecretGeneration: null, previousSecretUntil: null, callHeaders: {}, maxInFlight: null, updatedAt: new Date(),
  ...over,
});

describe('participant signing keys', () => {
  it('derive the same key from the same secret, name and generation, and a different one when any of them changes', () => {
    const key = deriveParticipantKey(coordinatorSecret, 'bank-a', 1);
    expect(deriveParticipantKey(coordinatorSecret, 'bank-a', 1).equals(key)).toBe(true);
    expect(deriveParticipantKey(coordinatorSecret, 'bank-b', 1).equals(key)).toBe(false);
    expect(deriveParticipantKey(coordinatorSecret, 'bank-a', 2).equals(key)).toBe(false);
    expect(deriveParticipantKey(randomBytes(32), 'bank-a', 1).equals(key)).toBe(false);
    // Name and generation are separated, so "bank-a" generation 11 is not "bank-a1" generation 1.
    expect(deriveParticipantKey(coordinatorSecret, 'bank-a1', 1).equals(deriveParticipantKey(coordinatorSecret, 'bank-a', 11))).toBe(false);
  });

  it('hand the participant its current key as a whsec_ secret', () => {
    const signing = ParticipantSigning.of(coordinatorSecret, record({ secretGeneration: 3 }));
    expect(parseSigningSecret(signing.secret).equals(deriveParticipantKey(coordinatorSecret, 'bank-a', 3))).toBe(true);
  });

  it('sign with the previous key too until the rotation window ends, then with the current one only', () => {
    const until = new Date(Date.now() + 60_000);
    const signing = ParticipantSigning.of(coordinatorSecret, record({ secretGeneration: 2, previousSecretGeneration: 1, previousSecretUntil: until }));
    const during = signing.keysAt(Date.now());
    expect(during).toHaveLength(2);
    expect(during[0].equals(deriveParticipantKey(coordinatorSecret, 'bank-a', 2))).toBe(true);
    expect(during[1].equals(deriveParticipantKey(coordinatorSecret, 'bank-a', 1))).toBe(true);
    expect(signing.keysAt(until.getTime())).toHaveLength(1);
    expect(ParticipantSigning.of(coordinatorSecret, record()).keysAt(Date.now())).toHaveLength(1);
  });
});
