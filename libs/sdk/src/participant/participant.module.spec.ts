import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatSigningSecret } from '@nest-dtx/protocol';
import { DtxParticipantModule } from './participant.module.js';

const base = { name: 'account', coordinatorUrl: 'http://127.0.0.1:7070', publicUrl: 'http://127.0.0.1:4001' };

describe('DtxParticipantModule', () => {
  it('refuses bad options when defined, in one line', () => {
    expect(() => DtxParticipantModule.forRoot({ ...base, register: false })).toThrow(/no signingSecret/);
    expect(() => DtxParticipantModule.forRoot({ ...base, register: false, signingSecret: formatSigningSecret(randomBytes(32)) })).not.toThrow();
  });

  it('declares the message handler for tcp and redis in forRoot and forRootAsync alike', () => {
    const tcp = { ...base, transport: { kind: 'tcp' as const, host: '127.0.0.1', port: 5001 } };
    expect(DtxParticipantModule.forRoot(base).controllers).toHaveLength(1);
    expect(DtxParticipantModule.forRoot(tcp).controllers).toHaveLength(2);
    expect(DtxParticipantModule.forRootAsync({ useFactory: () => base }).controllers).toHaveLength(1);
    expect(DtxParticipantModule.forRootAsync({ transport: 'tcp', useFactory: () => tcp }).controllers).toHaveLength(2);
    expect(DtxParticipantModule.forRootAsync({ transport: 'redis', name: 'account', useFactory: () => base }).controllers).toHaveLength(2);
    expect(() => DtxParticipantModule.forRootAsync({ transport: 'redis', useFactory: () => base })).toThrow(/transport redis needs name/);
  });
});
