import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { Json } from '@nest-dtx/protocol';
import { BusinessFailure } from '@nest-dtx/sdk';

/** Postgres bigint arrives as a string; amounts are integers (cents) well within 2^53. */
export const bigintAsNumber = { to: (value: number) => value, from: (value: string | null) => (value === null ? 0 : Number(value)) };

/** Validates an action's payload; a malformed one will never succeed, so it refuses the branch rather than being retried. */
export function parsePayload<T extends object>(type: new () => T, payload: Json): T {
  const parsed = plainToInstance(type, payload ?? {});
  const errors = validateSync(parsed, { whitelist: true });
  if (errors.length > 0) {
    throw new BusinessFailure(`invalid payload: ${errors.map((e) => e.property).join(', ')}`, { reason: 'invalid_payload' });
  }
  return parsed;
}
