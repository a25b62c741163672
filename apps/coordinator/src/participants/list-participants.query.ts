import { AdminPageQueryDto } from '@nest-dtx/protocol';

/**
 * GET /v1/participants query: the paging of the admin lists (limit 1..200, cursor). With
 * either, the answer is a page `{ items, nextCursor }`; with neither, the bare array it always
 * was, of the first 200 names (docs/rest-api.md "Limits").
 */
export class ListParticipantsQueryDto extends AdminPageQueryDto {}

/** Most participants one answer carries: the page size a client may ask for, and the cap of the bare list. */
export const MAX_PARTICIPANTS_PER_ANSWER = 200;
/** Page size when only `cursor` is given. */
export const DEFAULT_PARTICIPANT_PAGE = 50;
