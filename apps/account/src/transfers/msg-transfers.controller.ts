import { Body, ConflictException, Controller, HttpException, Post } from '@nestjs/common';
import type { TransactionView } from '@nest-dtx/protocol';
import { BusinessFailure, CoordinatorError, LocalTransactionRefused } from '@nest-dtx/sdk';
import { MsgTransferDto } from './msg-transfer.dto.js';
import { MsgTransfersService } from './msg-transfers.service.js';

/** The bank's own API for msg transfers (the e2e tests and docs/msg.md use it). */
@Controller('transfers')
export class MsgTransfersController {
  constructor(private readonly transfers: MsgTransfersService) {}

  /** 201 the message's view; 409 a refused debit (insufficient funds, a message already checked back); the coordinator's refusals as it gave them. */
  @Post('msg')
  async msg(@Body() dto: MsgTransferDto): Promise<TransactionView> {
    try {
      return await this.transfers.transfer(dto);
    } catch (error) {
      if (error instanceof BusinessFailure) throw new ConflictException({ statusCode: 409, error: 'BUSINESS_FAILURE', message: error.message, details: error.details });
      if (error instanceof LocalTransactionRefused) throw new ConflictException({ statusCode: 409, error: 'LOCAL_TRANSACTION_REFUSED', message: error.message });
      if (error instanceof CoordinatorError && error.statusCode >= 400) throw new HttpException(error.body ?? error.message, error.statusCode);
      throw error;
    }
  }
}
