import { Body, Controller, Get, Post } from '@nestjs/common';
import { RegisterParticipantDto, type ParticipantView } from '@app/protocol';
import { RequireAnyRole, RequireRole } from '../auth/roles.decorator.js';
import { ParticipantsService } from './participants.service.js';

@Controller('v1/participants')
export class ParticipantsController {
  constructor(private readonly participants: ParticipantsService) {}

  @Post()
  @RequireRole('participant')
  register(@Body() dto: RegisterParticipantDto): Promise<ParticipantView> {
    return this.participants.register(dto);
  }

  /** Clients look up what they may call, participants what is registered: any key may read. */
  @Get()
  @RequireAnyRole()
  list(): Promise<ParticipantView[]> {
    return this.participants.list();
  }
}
