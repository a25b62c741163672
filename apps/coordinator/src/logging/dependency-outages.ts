import { Global, Injectable, Logger, Module } from '@nestjs/common';
import { debugLogged } from './json-logger.js';
import { structuredMessage } from './log-record.js';
import { OutageEpisode, type OutageSink } from './outage-episode.js';

/** Writes an episode's lines through a Nest Logger (the JSON logger), its fields as fields. */
export function loggerSink(logger: Logger): OutageSink {
  return ({ level, msg, fields }) => {
    // Failures during an outage come as fast as requests do: below the level they cost nothing.
    if (level === 'debug' && !debugLogged()) return;
    logger[level](structuredMessage(msg, fields));
  };
}

/** An episode logging under `context`, for a part built outside Nest (an integration test's transport). */
export function standaloneOutage(dependency: string, context = 'DependencyOutage'): OutageEpisode {
  return new OutageEpisode(dependency, loggerSink(new Logger(context)));
}

/**
 * This instance's outage episode of every dependency (logging/outage-episode.ts), one each, shared
 * by everything that talks to it: the start-up wait, the pool, the request that got 503
 * STORE_UNAVAILABLE and the readiness probe all report to the same Postgres episode, so an
 * outage is one warn line however many of them saw it.
 */
@Injectable()
export class DependencyOutages {
  readonly postgres = standaloneOutage('postgres');
  readonly redis = standaloneOutage('redis');
  readonly rabbitmq = standaloneOutage('rabbitmq');
  readonly nats = standaloneOutage('nats');
}

/** Global: the database module's factory, the exception filter and the transports all need it. */
@Global()
@Module({ providers: [DependencyOutages], exports: [DependencyOutages] })
export class DependencyOutagesModule {}
