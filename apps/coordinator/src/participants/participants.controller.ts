import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiOkResponse, ApiOperation, ApiResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import {
  ErrorCode,
  ParticipantLimitsDto,
  RegisterParticipantDto,
  RotateSecretDto,
  type ParticipantAdminView,
  type ParticipantRegistrationView,
  type ParticipantView,
  type SecretRotationView,
} from '@nest-dtx/protocol';
import { ParticipantAdminViewSchema, ParticipantRegistrationViewSchema, ParticipantViewSchema, SecretRotationViewSchema } from '../docs/view-schemas.js';
import type { AuthenticatedRequest } from '../auth/authenticate.js';
import { RequireAnyRole, RequireRole } from '../auth/roles.decorator.js';
import { ApiAnswer, ApiErrors, ApiParticipantNameParam, ApiStoreBacked } from '../docs/api-responses.js';
import { ParticipantNamePipe } from '../common/path-param.pipes.js';
import { DEFAULT_PARTICIPANT_PAGE, ListParticipantsQueryDto, MAX_PARTICIPANTS_PER_ANSWER } from './list-participants.query.js';
import { ParticipantsService, type ParticipantPage } from './participants.service.js';

/** How long a rotated-out secret is still signed with when the operator does not say. */
const DEFAULT_OVERLAP_SECONDS = 3600;

/** The participant registry (PROTOCOL.md 4). */
@ApiTags('participants')
@ApiStoreBacked()
@Controller('v1/participants')
export class ParticipantsController {
  constructor(private readonly participants: ParticipantsService) {}

  @Post()
  @RequireRole('participant')
  @ApiOperation({
    summary: 'Register or update a participant',
    description: 'The SDK does it at start-up. The answer carries the participant\'s signing secret. With API keys, a name belongs to the key that first registered it. PROTOCOL.md 4.',
  })
  @ApiAnswer(201, ParticipantRegistrationViewSchema, 'Registered; `signingSecret` verifies the coordinator\'s calls.')
  @ApiErrors(
    { status: 400, codes: [ErrorCode.TRANSPORT_NOT_CONFIGURED], why: 'transport rabbitmq/nats on a coordinator without RABBITMQ_URL/NATS_URL; `field` names it' },
    {
      status: 403,
      codes: [ErrorCode.FORBIDDEN, ErrorCode.PARTICIPANT_HOST_NOT_ALLOWED, ErrorCode.PARTICIPANT_ADDRESS_NOT_ALLOWED, ErrorCode.PARTICIPANT_LIMIT],
      why:
        'the name belongs to another key (names are case-insensitive), the host or port is not in PARTICIPANT_HOSTS, the address is refused by the egress policy (PARTICIPANT_NETWORKS), or the key owns MAX_PARTICIPANTS_PER_KEY names already',
    },
  )
  register(@Body() dto: RegisterParticipantDto, @Req() request: AuthenticatedRequest): Promise<ParticipantRegistrationView> {
    return this.participants.register(dto, request.apiKey);
  }

  /**
   * Clients look up what they may call, participants what is registered: any key may read.
   * Paged, so no answer grows with the registry: without `limit` and `cursor` it keeps its
   * old shape (a bare array) but holds the first 200 names only, `x-next-cursor` saying where
   * the rest starts; with either it is a page `{ items, nextCursor }`.
   */
  @Get()
  @RequireAnyRole()
  @ApiOperation({
    summary: 'List the registered participants',
    description:
      `Without \`limit\` and \`cursor\`: a bare array of the first ${MAX_PARTICIPANTS_PER_ANSWER} participants by name, and when there are more, ` +
      'the header `x-next-cursor` to pass as `cursor`. With either: `{ "items": [...], "nextCursor": "..." | null }`.',
  })
  @ApiExtraModels(ParticipantViewSchema)
  @ApiOkResponse({
    description: 'The participants, by name (never a secret or a header value).',
    headers: { 'x-next-cursor': { description: 'Without `limit` and `cursor`, when more participants follow: the `cursor` of the next page.', schema: { type: 'string', maxLength: 600 } } },
    schema: {
      oneOf: [
        { type: 'array', maxItems: MAX_PARTICIPANTS_PER_ANSWER, items: { $ref: getSchemaPath(ParticipantViewSchema) } },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            items: { type: 'array', maxItems: MAX_PARTICIPANTS_PER_ANSWER, items: { $ref: getSchemaPath(ParticipantViewSchema) } },
            nextCursor: { type: ['string', 'null'], maxLength: 600 },
          },
          required: ['items', 'nextCursor'],
        },
      ],
    },
  })
  async list(
    @Query() query: ListParticipantsQueryDto,
    @Res({ passthrough: true }) res: { header(name: string, value: string): unknown },
  ): Promise<ParticipantView[] | ParticipantPage> {
    if (query.limit !== undefined || query.cursor !== undefined) {
      return this.participants.page(query.limit ?? DEFAULT_PARTICIPANT_PAGE, query.cursor);
    }
    const page = await this.participants.page(MAX_PARTICIPANTS_PER_ANSWER, undefined);
    if (page.nextCursor) res.header('x-next-cursor', page.nextCursor);
    return page.items;
  }

  @Delete(':name')
  @HttpCode(204)
  @RequireRole('participant')
  @ApiOperation({
    summary: 'Delete a participant',
    description:
      'Only the key that owns the name (admin keys: any). Refused while a transaction that is not finished has a branch on it. ' +
      'The name may then be registered again, by any key, with a signing secret nobody saw before.',
  })
  @ApiParticipantNameParam()
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiErrors(
    { status: 403, codes: [ErrorCode.FORBIDDEN], why: 'the name belongs to another key' },
    { status: 404, codes: [ErrorCode.NOT_FOUND], why: 'no participant of that name' },
    { status: 409, codes: [ErrorCode.PARTICIPANT_IN_USE], why: 'a transaction that is not finished has a branch on it' },
  )
  async delete(@Param('name', ParticipantNamePipe) name: string, @Req() request: AuthenticatedRequest): Promise<void> {
    await this.participants.delete(name, request.apiKey);
  }
}

/** Operators' side of the registry: ownership, load, secret rotation, releasing a name, limits. */
@ApiTags('admin')
@ApiStoreBacked()
@Controller('admin/participants')
@RequireRole('admin')
export class ParticipantsAdminController {
  constructor(private readonly participants: ParticipantsService) {}

  @Get()
  @ApiOperation({
    summary: 'Participants with their owner key, secret generation, limits and load',
    description:
      '`load` is the gate of the instance that answered (each instance has its own): calls in flight and waiting, the adaptive limit, ' +
      'the circuit breaker, the calls not made; null until that instance has called the participant.',
  })
  @ApiAnswer(200, [ParticipantAdminViewSchema], 'Every registered participant.')
  list(): Promise<ParticipantAdminView[]> {
    return this.participants.listForAdmin();
  }

  @Post(':name/rotate-secret')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Rotate a participant\'s signing secret',
    description:
      'Calls are signed with the new and the previous secret side by side for `overlapSeconds` (default 3600), then with the new one only; ' +
      '0 revokes the previous one at once. SDK participants pick the new secret up by registering again (periodically, and after a call fails to verify).',
  })
  @ApiParticipantNameParam()
  @ApiBody({ type: RotateSecretDto, required: false })
  @ApiAnswer(200, SecretRotationViewSchema, 'Rotated; `signingSecret` is the new secret.')
  @ApiErrors({ status: 404, codes: [ErrorCode.NOT_FOUND], why: 'no participant of that name' })
  rotate(@Param('name', ParticipantNamePipe) name: string, @Body() dto: RotateSecretDto): Promise<SecretRotationView> {
    return this.participants.rotateSecret(name, (dto.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS) * 1000);
  }

  @Post(':name/release')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Release a participant name from its API key',
    description: 'The next key to register the name owns it. The name\'s signing secret is revoked at once, so the next owner gets one the previous owner never saw.',
  })
  @ApiParticipantNameParam()
  @ApiAnswer(200, ParticipantAdminViewSchema, 'Released.')
  @ApiErrors({ status: 404, codes: [ErrorCode.NOT_FOUND], why: 'no participant of that name' })
  release(@Param('name', ParticipantNamePipe) name: string): Promise<ParticipantAdminView> {
    return this.participants.release(name);
  }

  @Put(':name/limits')
  @ApiOperation({
    summary: "Set a participant's ceiling on calls in flight",
    description:
      'The most calls each coordinator instance may have in flight to this participant at once, instead of PARTICIPANT_MAX_IN_FLIGHT; ' +
      'its adaptive limit stays at or below it, and calls past it wait in its queue. Every instance applies it within moments (the bus), ' +
      'and a registration keeps it. `{ "maxInFlight": null }` clears it.',
  })
  @ApiParticipantNameParam()
  @ApiBody({ type: ParticipantLimitsDto })
  @ApiAnswer(200, ParticipantAdminViewSchema, 'Set; the participant as GET /admin/participants shows it.')
  @ApiErrors({ status: 404, codes: [ErrorCode.NOT_FOUND], why: 'no participant of that name' })
  setLimits(@Param('name', ParticipantNamePipe) name: string, @Body() dto: ParticipantLimitsDto): Promise<ParticipantAdminView> {
    return this.participants.setLimits(name, dto.maxInFlight);
  }
}
