import type { FactoryProvider, ModuleMetadata } from '@nestjs/common';

export interface ParticipantModuleOptions {
  /** The participant's name in the coordinator's registry, e.g. `account`. */
  name: string;
  /** Base URL of the coordinator, e.g. `http://127.0.0.1:7070`. */
  coordinatorUrl: string;
  /** Base URL at which the coordinator reaches this service, e.g. `http://127.0.0.1:4001`. */
  publicUrl: string;
  /** Route prefix of the participant protocol; the endpoint registered is `${publicUrl}/${path}`. Default `tx`. */
  path?: string;
  /** Register with the coordinator at start-up. Default true. */
  register?: boolean;
  /** How long start-up waits for the first successful registration before going on in the background. Default 15 s. */
  registerWaitMs?: number;
  /** Bearer key sent to the coordinator, when it requires one. */
  apiKey?: string;
}

export const PARTICIPANT_OPTIONS = Symbol('dtx:participant-options');

export interface ParticipantModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Route prefix, needed when the module is defined (before the factory runs). Default `tx`. */
  path?: string;
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => ParticipantModuleOptions | Promise<ParticipantModuleOptions>;
}
