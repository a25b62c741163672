import type { HealthIndicatorResult } from '@nestjs/terminus';
import type { OutageEpisode } from '../logging/outage-episode.js';

/**
 * A readiness indicator whose outcome its dependency's outage episode hears of: a probe every
 * few seconds during an outage is one warn line in all (not one error line each, as Terminus
 * logs them), and the first probe answered ends the episode.
 */
export async function reportedTo<Key extends string>(
  outage: OutageEpisode,
  key: Key,
  check: PromiseLike<HealthIndicatorResult<Key>>,
  /** The connection the check goes over, when the episode tells its connections apart. */
  source?: string,
): Promise<HealthIndicatorResult<Key>> {
  const result = await check;
  const outcome = result[key];
  if (outcome.status === 'down') {
    const message: unknown = outcome.message;
    outage.failed(typeof message === 'string' && message !== '' ? `readiness: ${message}` : 'readiness check failed', source);
  } else {
    outage.recovered(source);
  }
  return result;
}
