import { setTimeout as delay } from 'node:timers/promises';
import type { FactoryProvider } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import type { DtxDataLayer } from '../data-layers/core/data-layer.js';
import { typeormDataLayer } from '../data-layers/typeorm/index.js';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

/** The participant's data layer: the `dataLayer` option, or the TypeORM DataSource the `dataSource` option names. */
export const DTX_DATA_LAYER = Symbol('dtx:data-layer');

/** How long start-up waits for the named DataSource to be connected (TypeORM retries its own connection meanwhile). */
const WAIT_LIMIT_MS = 5 * 60 * 1000;
const POLL_MS = 5;

/**
 * Finds the DataSource TypeORM registered under `name` anywhere in the app. Its token is only
 * known once the options are, so it cannot be injected the usual way; and Nest creates the
 * providers of all modules at once, so TypeORM's (asynchronous) DataSource may not exist yet
 * when this runs: a token TypeORM registered but has not resolved yet is waited for. An
 * unknown name fails at once, in one line. @nestjs/typeorm is loaded only here, so that an app
 * on another data layer does not need it.
 */
export async function findDataSource(moduleRef: ModuleRef, options: Pick<ParticipantModuleOptions, 'name' | 'dataSource'>): Promise<DataSource> {
  const described = options.dataSource === undefined ? 'the default TypeORM DataSource' : `the TypeORM DataSource ${options.dataSource}`;
  let getDataSourceToken: (name?: string) => unknown;
  try {
    ({ getDataSourceToken } = await import('@nestjs/typeorm'));
  } catch {
    throw new Error(`participant ${options.name}: no dataLayer option, and @nestjs/typeorm (for ${described}) is not installed`);
  }
  const token = getDataSourceToken(options.dataSource) as string;
  const giveUpAt = performance.now() + WAIT_LIMIT_MS;
  for (;;) {
    let found: DataSource | undefined;
    try {
      found = moduleRef.get<DataSource>(token, { strict: false });
    } catch {
      const hint = options.dataSource === undefined ? 'TypeOrmModule.forRoot(...)' : `TypeOrmModule.forRoot({ name: '${options.dataSource}', ... })`;
      throw new Error(`participant ${options.name}: ${described} is not in the app (the barrier needs ${hint}, or a dataLayer option)`);
    }
    if (found) return found;
    if (performance.now() > giveUpAt) throw new Error(`participant ${options.name}: ${described} was not ready after ${WAIT_LIMIT_MS} ms`);
    await delay(POLL_MS, undefined, { ref: false });
  }
}

export const dataLayerProvider: FactoryProvider<Promise<DtxDataLayer>> = {
  provide: DTX_DATA_LAYER,
  inject: [PARTICIPANT_OPTIONS, ModuleRef],
  useFactory: async (options: ParticipantModuleOptions, moduleRef: ModuleRef) =>
    options.dataLayer ?? (typeormDataLayer(await findDataSource(moduleRef, options))),
};
