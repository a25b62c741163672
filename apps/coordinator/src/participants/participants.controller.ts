import { Body, Controller, Get, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ParticipantViewSchema, RegisterParticipantDto, type ParticipantView } from '@app/protocol';
import { RequireAnyRole, RequireRole } from '../auth/roles.decorator.js';
import { ApiAnswer, ApiErrors, ApiKeyProtected, BAD_INPUT } from '../docs/api-responses.js';
import { ParticipantsService } from './participants.service.js';

/** The participant registry (PROTOCOL.md 4). */
@ApiTags('participants')
@ApiKeyProtected()
@Controller('v1/participants')
export class ParticipantsController {
  constructor(private readonly participants: ParticipantsService) {}

  @Post()
  @RequireRole('participant')
  @ApiOperation({ summary: 'Register or update a participant', description: 'The SDK does it at start-up. PROTOCOL.md 4.' })
  @ApiAnswer(201, ParticipantViewSchema, 'Registered.')
  @ApiErrors(BAD_INPUT)
  register(@Body() dto: RegisterParticipantDto): Promise<ParticipantView> {
    return this.participants.register(dto);
  }

  /** Clients look up what they may call, participants what is registered: any key may read. */
  @Get()
  @RequireAnyRole()
  @ApiOperation({ summary: 'List the registered participants' })
  @ApiAnswer(200, [ParticipantViewSchema], 'Every registered participant.')
  list(): Promise<ParticipantView[]> {
    return this.participants.list();
  }
}
