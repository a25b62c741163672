import { setTimeout as delay } from 'node:timers/promises';
import type { FactoryProvider } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { PARTICIPANT_OPTIONS, type ParticipantModuleOptions } from './participant.options.js';

/** The DataSource of the barrier (and of the actions' local transactions): the one the `dataSource` option names. */
export const DTX_DATA_SOURCE = Symbol('dtx:data-source');

/** How long start-up waits for the named DataSource to be connected (TypeORM retries its own connection meanwhile). */
const WAIT_LIMIT_MS = 5 * 60 * 1000;
const POLL_MS = 5;

/**
 * Finds the DataSource TypeORM registered under `name` anywhere in the app. Its token is only
 * known once the options are, so it cannot be injected the usual way; and Nest creates the
 * providers of all modules at once, so TypeORM's (asynchronous) DataSource may not exist yet
 * when this runs: a token TypeORM registered but has not resolved yet is waited for. An
 * unknown name fails at once, in one line.
 */
export async function findDataSource(moduleRef: ModuleRef, options: Pick<ParticipantModuleOptions, 'name' | 'dataSource'>): Promise<DataSource> {
  const token = getDataSourceToken(options.dataSource);
  const described = options.dataSource === undefined ? 'the default TypeORM DataSource' : `the TypeORM DataSource ${options.dataSource}`;
  const giveUpAt = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    let found: DataSource | undefined;
    try {
      found = moduleRef.get<DataSource>(token, { strict: false });
    } catch {
      const hint = options.dataSource === undefined ? 'TypeOrmModule.forRoot(...)' : `TypeOrmModule.forRoot({ name: '${options.dataSource}', ... })`;
      throw new Error(`participant ${options.name}: ${described} is not in the app (the barrier needs ${hint})`);
    }
    if (found) return found;
    if (Date.now() > giveUpAt) throw new Error(`participant ${options.name}: ${described} was not ready after ${WAIT_LIMIT_MS} ms`);
    await delay(POLL_MS, undefined, { ref: false });
  }
}

export const barrierDataSourceProvider: FactoryProvider<Promise<DataSource>> = {
  provide: DTX_DATA_SOURCE,
  inject: [PARTICIPANT_OPTIONS, ModuleRef],
  useFactory: (options: ParticipantModuleOptions, moduleRef: ModuleRef) => findDataSource(moduleRef, options),
};
