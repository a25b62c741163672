import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DynamicModule } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { describe, expect, it } from 'vitest';
import { formatSigningSecret } from '@nest-dtx/protocol';
import { DtxParticipantModule } from './participant.module.js';
import { DtxParticipantHealthIndicator } from './participant-health.indicator.js';

const base = { name: 'account', coordinatorUrl: 'http://127.0.0.1:7070', publicUrl: 'http://127.0.0.1:4001' };

/** Every non-spec source file of the SDK, with its text. */
function sdkSources(): { file: string; text: string }[] {
  const root = fileURLToPath(new URL('..', import.meta.url));
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'))
    .map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));
}

describe('DtxParticipantModule', () => {
  it('refuses bad options when defined with forRoot, in one line', () => {
    expect(() => DtxParticipantModule.forRoot({ ...base, register: false })).toThrow(/no signingSecret/);
    expect(() => DtxParticipantModule.forRoot({ ...base, register: false, signingSecret: formatSigningSecret(randomBytes(32)) })).not.toThrow();
  });

  it('declares only the HTTP routes, whatever the transport: the message handler is added when the transport is connected', () => {
    const tcp = { ...base, transport: { kind: 'tcp' as const, host: '127.0.0.1', port: 5001 } };
    expect(DtxParticipantModule.forRoot(base).controllers).toHaveLength(1);
    expect(DtxParticipantModule.forRoot(tcp).controllers).toHaveLength(1);
    expect(DtxParticipantModule.forRootAsync({ useFactory: () => tcp }).controllers).toHaveLength(1);
  });

  it('declares the routes under the path given to forRoot, or next to forRootAsync\'s factory (default tx)', () => {
    const pathOf = (definition: DynamicModule) => Reflect.getMetadata(PATH_METADATA, definition.controllers?.[0] ?? Object) as unknown;
    expect(pathOf(DtxParticipantModule.forRoot(base))).toBe('tx');
    expect(pathOf(DtxParticipantModule.forRoot({ ...base, path: 'dtx' }))).toBe('dtx');
    expect(pathOf(DtxParticipantModule.forRootAsync({ useFactory: () => base }))).toBe('tx');
    expect(pathOf(DtxParticipantModule.forRootAsync({ path: 'dtx', useFactory: () => base }))).toBe('dtx');
  });

  it('is global only when asked, with forRoot and forRootAsync alike', () => {
    expect(DtxParticipantModule.forRoot(base).global).toBe(false);
    expect(DtxParticipantModule.forRoot({ ...base, isGlobal: true }).global).toBe(true);
    expect(DtxParticipantModule.forRootAsync({ useFactory: () => base }).global).toBe(false);
    expect(DtxParticipantModule.forRootAsync({ isGlobal: true, useFactory: () => base }).global).toBe(true);
  });

  it('does not hand isGlobal on to the options, and exports the health indicator', () => {
    const definition = DtxParticipantModule.forRoot({ ...base, isGlobal: true });
    const given = definition.providers?.find((p) => typeof p === 'object' && 'useValue' in p) as { useValue: object } | undefined;
    expect(given?.useValue).toEqual(base);
    expect(definition.exports).toContain(DtxParticipantHealthIndicator);
  });

  it('registers a useClass options factory as a provider of the module', () => {
    class Options {
      createDtxParticipantOptions() {
        return base;
      }
    }
    const definition = DtxParticipantModule.forRootAsync({ useClass: Options });
    expect(definition.providers).toContainEqual({ provide: Options, useClass: Options });
  });
});

describe('the SDK and its optional peers', () => {
  it('imports @nestjs/microservices and @nestjs/terminus for their types only (microservices is loaded by connectParticipantTransport)', () => {
    const runtime = /^import\s+(?!type\b)[^;]*from\s+'@nestjs\/(microservices|terminus)'/m;
    expect(sdkSources().filter(({ text }) => runtime.test(text)).map(({ file }) => file)).toEqual([]);
    expect(sdkSources().filter(({ text }) => text.includes("'@nestjs/terminus'")).map(({ file }) => file)).toEqual([]);
  });

  it('loads a data layer\'s library only in that layer\'s own subpath folder, and @nestjs/typeorm only by a dynamic import', () => {
    const libraries = ['typeorm', '@nestjs/typeorm', 'pg', 'mysql2', 'ioredis', 'kysely', 'drizzle-orm', '@mikro-orm', '@prisma'];
    const offenders: string[] = [];
    for (const { file, text } of sdkSources()) {
      for (const [, from] of text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)) {
        const library = libraries.find((name) => from === name || from.startsWith(`${name}/`));
        if (!library) continue;
        const home = file.split(/[\\/]/).slice(0, 2).join('/');
        const owner = { '@mikro-orm': 'mikro-orm', '@prisma': 'prisma', 'drizzle-orm': 'drizzle', ioredis: 'redis' }[library] ?? library;
        if (home !== `data-layers/${owner}` || library === '@nestjs/typeorm') offenders.push(`${file}: ${from}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

describe('the dataLayer option', () => {
  it('is refused next to a dataSource name, in one line', () => {
    const dataLayer = { description: 'fake', runPhase: () => Promise.reject(new Error('unused')), deleteExpiredBarrierRows: () => Promise.resolve(0) };
    expect(() => DtxParticipantModule.forRoot({ ...base, dataLayer, dataSource: 'ledger' })).toThrow(
      'participant account: give dataLayer or dataSource (a TypeORM DataSource\'s name), not both',
    );
    expect(() => DtxParticipantModule.forRoot({ ...base, dataLayer })).not.toThrow();
  });
});
