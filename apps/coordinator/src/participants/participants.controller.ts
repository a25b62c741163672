import { Body, Controller, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { NAME_PATTERN, RegisterParticipantDto, RotateSecretDto, type ParticipantAdminView, type ParticipantRegistrationView, type ParticipantView, type SecretRotationView } from '@nest-dtx/protocol';
import { ParticipantAdminViewSchema, ParticipantRegistrationViewSchema, ParticipantViewSchema, SecretRotationViewSchema } from '../docs/view-schemas.js';
import type { AuthenticatedRequest } from '../auth/authenticate.js';
import { RequireAnyRole, RequireRole } from '../auth/roles.decorator.js';
import { ApiAnswer, ApiErrors, ApiKeyProtected, BAD_INPUT } from '../docs/api-responses.js';
import { ParticipantNamePipe } from '../common/path-param.pipes.js';
import { ParticipantsService } from './participants.service.js';

/** How long a rotated-out secret is still signed with when the operator does not say. */
const DEFAULT_OVERLAP_SECONDS = 3600;

/** The participant registry (PROTOCOL.md 4). */
@ApiTags('participants')
@ApiKeyProtected()
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
    { status: 400, codes: [...BAD_INPUT.codes, 'TRANSPORT_NOT_CONFIGURED'], why: 'bad input, or transport rabbitmq/nats on a coordinator without RABBITMQ_URL/NATS_URL; `field` names it' },
    { status: 403, codes: ['FORBIDDEN', 'PARTICIPANT_HOST_NOT_ALLOWED', 'PARTICIPANT_ADDRESS_NOT_ALLOWED'], why: 'the name belongs to another key, the host or port is not in PARTICIPANT_HOSTS, or the address is refused by the egress policy (PARTICIPANT_NETWORKS)' },
  )
  register(@Body() dto: RegisterParticipantDto, @Req() request: AuthenticatedRequest): Promise<ParticipantRegistrationView> {
    return this.participants.register(dto, request.apiKey);
  }

  /** Clients look up what they may call, participants what is registered: any key may read. */
  @Get()
  @RequireAnyRole()
  @ApiOperation({ summary: 'List the registered participants' })
  @ApiAnswer(200, [ParticipantViewSchema], 'Every registered participant (never a secret or a header value).')
  list(): Promise<ParticipantView[]> {
    return this.participants.list();
  }
}

/** Operators' side of the registry: ownership, secret rotation, releasing a name. */
@ApiTags('admin')
@ApiKeyProtected()
@Controller('admin/participants')
@RequireRole('admin')
export class ParticipantsAdminController {
  constructor(private readonly participants: ParticipantsService) {}

  @Get()
  @ApiOperation({ summary: 'Participants with their owner key and secret generation' })
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
  @ApiParam({ name: 'name', schema: { type: 'string', pattern: NAME_PATTERN.source } })
  @ApiBody({ type: RotateSecretDto, required: false })
  @ApiAnswer(200, SecretRotationViewSchema, 'Rotated; `signingSecret` is the new secret.')
  @ApiErrors(BAD_INPUT, { status: 404, codes: ['NOT_FOUND'], why: 'no participant of that name' })
  rotate(@Param('name', ParticipantNamePipe) name: string, @Body() dto: RotateSecretDto): Promise<SecretRotationView> {
    return this.participants.rotateSecret(name, (dto.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS) * 1000);
  }

  @Post(':name/release')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Release a participant name from its API key',
    description: 'The next key to register the name owns it. The name\'s signing secret is revoked at once, so the next owner gets one the previous owner never saw.',
  })
  @ApiParam({ name: 'name', schema: { type: 'string', pattern: NAME_PATTERN.source } })
  @ApiAnswer(200, ParticipantAdminViewSchema, 'Released.')
  @ApiErrors(BAD_INPUT, { status: 404, codes: ['NOT_FOUND'], why: 'no participant of that name' })
  release(@Param('name', ParticipantNamePipe) name: string): Promise<ParticipantAdminView> {
    return this.participants.release(name);
  }
}
