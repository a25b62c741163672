import { Body, Controller, Get, Post } from '@nestjs/common';
import { RegisterParticipantDto, type ParticipantView } from '@app/protocol';
import { ParticipantsService } from './participants.service.js';

@Controller('v1/participants')
export class ParticipantsController {
  constructor(private readonly participants: ParticipantsService) {}

  @Post()
  register(@Body() dto: RegisterParticipantDto): Promise<ParticipantView> {
    return this.participants.register(dto);
  }

  @Get()
  list(): Promise<ParticipantView[]> {
    return this.participants.list();
  }
}
