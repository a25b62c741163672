import { ErrorCode, ID_PATTERN } from '@nest-dtx/protocol';
import { ApiError } from '../common/api-error.js';

/**
 * The admin lists' filters and cursors, read strictly: whatever reaches Postgres is a value it
 * accepts, so a crafted query is a 400 naming its field, never a 500. Postgres takes years 1 to
 * 294276 (and BC dates as `… BC`, not as JS writes them); JavaScript dates run from -271821 to
 * 275760 and roll 2020-02-30 over to March. The lists accept years 1 to 9999 and real calendar days.
 */

const bad = (field: string, message: string) => new ApiError(400, ErrorCode.VALIDATION_FAILED, message, { field });

/** Whether `yyyy-mm-dd` at the start of `text` (when it starts so) is a day of the calendar: 2020-02-30 is not. */
function realCalendarDay(text: string): boolean {
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (!day) return true;
  const [year, month, date] = [Number(day[1]), Number(day[2]), Number(day[3])];
  const parsed = new Date(Date.UTC(year, month - 1, date));
  return parsed.getUTCMonth() === month - 1 && parsed.getUTCDate() === date;
}

/** A `from` / `to` filter (ISO-8601, already checked by the DTO) as a Date Postgres compares; 400 naming the field otherwise. */
export function dateFilter(value: string | undefined, field: 'from' | 'to'): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  const year = date.getUTCFullYear();
  if (Number.isNaN(date.getTime()) || !realCalendarDay(value)) throw bad(field, `${field} must be a date and time of the calendar (ISO-8601)`);
  if (year < 1 || year > 9999) throw bad(field, `${field} must be between the years 0001 and 9999`);
  return date;
}

/** A keyset position's time as this API writes it (Postgres's to_char to the microsecond, UTC), and nothing else. */
const KEYSET_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function isKeysetTime(text: string): boolean {
  if (!KEYSET_TIME.test(text) || !realCalendarDay(text)) return false;
  // Second-precision round trip: hours past 23 or minutes past 59 do not come back the same.
  const date = new Date(text);
  return !Number.isNaN(date.getTime()) && date.getUTCFullYear() >= 1 && date.toISOString().slice(0, 19) === text.slice(0, 19);
}

/** GET /admin/transactions's cursor: `createdAt|gid`, base64url. */
export function encodeTransactionCursor(position: { createdAt: string; gid: string }): string {
  return Buffer.from(`${position.createdAt}|${position.gid}`, 'utf8').toString('base64url');
}

/** The position a cursor of GET /admin/transactions names; 400 naming `cursor` for anything this API did not return. */
export function decodeTransactionCursor(cursor: string): { createdAt: string; gid: string } {
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const [createdAt, gid] = parts;
  if (parts.length !== 2 || !isKeysetTime(createdAt) || !ID_PATTERN.test(gid)) throw bad('cursor', 'cursor is not a cursor this API returned');
  return { createdAt, gid };
}
