import { Module } from '@nestjs/common';
import { AccountsController } from './accounts.controller.js';
import { AccountsService } from './accounts.service.js';
import { AtAccountsService } from './at-accounts.service.js';

@Module({
  controllers: [AccountsController],
  providers: [AccountsService, AtAccountsService],
})
export class AccountsModule {}
