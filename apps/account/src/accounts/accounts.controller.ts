import { Body, Controller, Get, NotFoundException, Param, Post } from '@nestjs/common';
import { AccountEntity } from './account.entity.js';
import { OpenAccountDto } from '@app/demo-support';
import { AccountsService, type AccountsSummary } from './accounts.service.js';

/** The bank's own API: open accounts and read balances (the demo uses it). */
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Post()
  open(@Body() dto: OpenAccountDto): Promise<AccountEntity> {
    return this.accounts.open(dto);
  }

  @Get()
  summary(): Promise<AccountsSummary> {
    return this.accounts.summary();
  }

  @Get(':id')
  async find(@Param('id') id: string): Promise<AccountEntity> {
    const account = await this.accounts.find(id);
    if (!account) throw new NotFoundException(`account ${id} not found`);
    return account;
  }
}
