/**
 * The participant registry against a real Postgres (PROTOCOL.md 4): a name belongs to the key
 * that first registered it, even when two keys race for it; rotation and release move the
 * secret generation; every instance gets the same coordinator secret.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { COORDINATOR_MIGRATIONS } from '../../apps/coordinator/src/database/database.module.js';
import { ParticipantStore } from '../../apps/coordinator/src/store/participant.store.js';
import type { ParticipantRegistrationRecord } from '../../apps/coordinator/src/store/records.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

let db: TestDatabase;
let dataSource: DataSource;
let store: ParticipantStore;
const digest = (key: string) => createHash('sha256').update(key).digest();
const alice = digest('alice-key');
const bob = digest('bob-key');

const registration = (name: string, owner: Buffer | null, endpoint = 'http://127.0.0.1:1/tx'): ParticipantRegistrationRecord => ({
  name,
  transport: 'http',
  endpoint,
  host: null,
  port: null,
  publish: false,
  actions: [{ name: 'debit', modes: ['tcc'] }],
  callHeaders: { 'x-gateway-key': 'g' },
  ownerKeyDigest: owner,
});

beforeAll(async () => {
  db = await createTestDatabase('participant_store');
  dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: COORDINATOR_MIGRATIONS, extra: { max: 20 } });
  await dataSource.initialize();
  await dataSource.runMigrations();
  store = new ParticipantStore(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('ParticipantStore', () => {
  it('binds a new name to its first key; another key changes nothing; the owner may update', async () => {
    const first = await store.register(registration('owned', alice), true);
    expect(first).toMatchObject({ name: 'owned', secretGeneration: 1, callHeaders: { 'x-gateway-key': 'g' } });
    expect(first?.ownerKeyDigest?.equals(alice)).toBe(true);
    expect(await store.register(registration('owned', bob, 'http://127.0.0.1:2/stolen'), true)).toBeNull();
    expect((await store.find('owned'))?.endpoint).toBe('http://127.0.0.1:1/tx');
    expect((await store.register(registration('owned', alice, 'http://127.0.0.1:3/moved'), true))?.endpoint).toBe('http://127.0.0.1:3/moved');
  });

  it('lets exactly one of many keys racing for a new name win it', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => digest(`racer-${i}`));
    const answers = await Promise.all(keys.map((key, i) => store.register(registration('contested', key, `http://127.0.0.1:${1000 + i}/tx`), true)));
    const winners = answers.filter((a) => a !== null);
    expect(winners).toHaveLength(1);
    const stored = await store.find('contested');
    expect(stored?.endpoint).toBe(winners[0].endpoint);
    expect(stored?.ownerKeyDigest?.equals(winners[0].ownerKeyDigest!)).toBe(true);
  });

  it('without keys binds nothing, and an unowned name is claimed by the first key that registers it', async () => {
    expect((await store.register(registration('open', null), false))?.ownerKeyDigest).toBeNull();
    expect((await store.register(registration('open', alice), true))?.ownerKeyDigest?.equals(alice)).toBe(true);
    expect(await store.register(registration('open', bob), true)).toBeNull();
  });

  it('rotates with an overlap window or revokes at once, and release frees the name with a new generation', async () => {
    await store.register(registration('rotating', alice), true);
    const overlapping = await store.rotateSecret('rotating', 60_000);
    expect(overlapping).toMatchObject({ secretGeneration: 2, previousSecretGeneration: 1 });
    expect(overlapping!.previousSecretUntil!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(await store.rotateSecret('rotating', 0)).toMatchObject({ secretGeneration: 3, previousSecretGeneration: null, previousSecretUntil: null });
    const released = await store.release('rotating');
    expect(released).toMatchObject({ secretGeneration: 4, ownerKeyDigest: null });
    expect((await store.register(registration('rotating', bob), true))?.ownerKeyDigest?.equals(bob)).toBe(true);
    expect(await store.rotateSecret('nobody', 0)).toBeNull();
    expect(await store.release('nobody')).toBeNull();
  });

  it('keeps one coordinator secret: the first candidate written wins, for every instance starting at once', async () => {
    const candidates = Array.from({ length: 8 }, () => randomBytes(32));
    const secrets = await Promise.all(candidates.map((candidate) => new ParticipantStore(dataSource).storedSigningSecret(candidate)));
    expect(new Set(secrets.map((s) => s.toString('hex'))).size).toBe(1);
    expect(candidates.some((c) => c.equals(secrets[0]))).toBe(true);
    expect((await store.storedSigningSecret(randomBytes(32))).equals(secrets[0])).toBe(true);
  });

  it('takes names without case: another spelling is the same row, which keeps its first spelling', async () => {
    await store.register(registration('Case-Name', alice), true);
    expect(await store.register(registration('case-name', bob), true)).toBeNull();
    const updated = await store.register(registration('CASE-NAME', alice, 'http://127.0.0.1:4/tx'), true);
    expect(updated).toMatchObject({ name: 'Case-Name', endpoint: 'http://127.0.0.1:4/tx' });
    expect((await store.find('cAsE-nAmE'))?.name).toBe('Case-Name');
    expect((await store.list()).filter((p) => p.name.toLowerCase() === 'case-name')).toHaveLength(1);
  });

  it('deletes a name no unfinished transaction uses, and registered again it starts past its last secret generation', async () => {
    await store.register(registration('Deleted', alice), true);
    await store.rotateSecret('deleted', 0);
    expect(await store.delete('DELETED')).toBe('deleted');
    expect(await store.find('deleted')).toBeNull();
    expect(await store.delete('deleted')).toBe('missing');
    expect((await store.register(registration('deleted', bob), true))?.secretGeneration).toBe(3);

    await dataSource.query(`INSERT INTO global_transactions (gid, mode, status, request_hash, timeout_ms, deadline) VALUES ('uses-deleted', 'tcc', 'active', 'h', 1000, now())`);
    await dataSource.query(`INSERT INTO branches (gid, branch_id, seq, participant, action, status) VALUES ('uses-deleted', 'b', 1, 'DELETED', 'debit', 'prepared')`);
    expect(await store.delete('deleted')).toBe('in_use');
    await dataSource.query(`UPDATE global_transactions SET status = 'rolled_back' WHERE gid = 'uses-deleted'`);
    expect(await store.delete('deleted')).toBe('deleted');
  });

  it('counts the names a key owns', async () => {
    const carol = digest('carol-key');
    expect(await store.countOwnedBy(carol)).toBe(0);
    await store.register(registration('carol-1', carol), true);
    await store.register(registration('carol-2', carol), true);
    expect(await store.countOwnedBy(carol)).toBe(2);
  });
});
