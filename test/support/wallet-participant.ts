/**
 * A participant app assembled the ways a team would: DtxParticipantModule with forRoot or
 * forRootAsync (useFactory, useClass), on a named TypeORM DataSource or the default one, with a
 * Terminus health route. Its business (Wallet) has a TCC action and a saga step, writing one
 * ledger row (LEDGER_DDL) per call that took effect.
 */
import { Controller, Get, Inject, Injectable, Module, type DynamicModule, type ModuleMetadata, type Provider } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Json } from '@nest-dtx/protocol';
import {
  DtxParticipantHealthIndicator,
  DtxParticipantModule,
  SagaAction,
  TccAction,
  TransactionParticipant,
  type BranchContext,
  type DtxParticipantOptionsFactory,
  type ParticipantModuleOptions,
} from '@nest-dtx/sdk';

@Injectable()
@TransactionParticipant()
export class Wallet {
  readonly calls: string[] = [];

  /** Returns nothing: the branch's result (and the HTTP answer) is JSON `null`. */
  @TccAction({ name: 'hold', confirm: 'confirmHold', cancel: 'cancelHold' })
  async hold(payload: Json, context: BranchContext): Promise<void> {
    await this.record(payload, context);
  }

  async confirmHold(payload: Json, context: BranchContext): Promise<void> {
    await this.record(payload, context);
  }

  async cancelHold(payload: Json, context: BranchContext): Promise<void> {
    await this.record(payload, context);
  }

  /** Returns a string, which must come back as the JSON string, not as text. */
  @SagaAction({ name: 'pay', compensate: 'refund' })
  async pay(payload: Json, context: BranchContext): Promise<Json> {
    await this.record(payload, context);
    return '42';
  }

  async refund(payload: Json, context: BranchContext): Promise<void> {
    await this.record(payload, context);
  }

  private async record(payload: Json, { gid, phase, manager }: BranchContext): Promise<void> {
    const fields = typeof payload === 'object' && payload !== null && !Array.isArray(payload) ? payload : {};
    this.calls.push(`${gid}/${phase}`);
    await manager.query(`INSERT INTO ledger (gid, phase, amount) VALUES ($1, $2, $3)`, [gid, phase, typeof fields.amount === 'number' ? fields.amount : 0]);
  }
}

/** Where the app's configuration comes from, as a ConfigService would hold it. */
export const WALLET_CONFIG = Symbol('wallet-config');

@Module({})
export class WalletConfigModule {
  static with(options: ParticipantModuleOptions): DynamicModule {
    return { module: WalletConfigModule, providers: [{ provide: WALLET_CONFIG, useValue: options }], exports: [WALLET_CONFIG] };
  }
}

/** forRootAsync's useClass: made in the participant module, injecting the configuration. */
@Injectable()
export class WalletParticipantOptions implements DtxParticipantOptionsFactory {
  constructor(@Inject(WALLET_CONFIG) private readonly config: ParticipantModuleOptions) {}

  async createDtxParticipantOptions(): Promise<ParticipantModuleOptions> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    return this.config;
  }
}

export type Configured = 'forRoot' | 'useFactory' | 'useClass';

/** DtxParticipantModule configured one of the three ways, with the same options. */
export function participantModule(configured: Configured, options: ParticipantModuleOptions, extras: { isGlobal?: boolean } = {}): DynamicModule {
  switch (configured) {
    case 'forRoot':
      return DtxParticipantModule.forRoot({ ...options, ...extras });
    case 'useFactory':
      return DtxParticipantModule.forRootAsync({
        ...extras,
        imports: [WalletConfigModule.with(options)],
        inject: [WALLET_CONFIG],
        useFactory: (config: ParticipantModuleOptions) => Promise.resolve({ ...config }),
      });
    case 'useClass':
      return DtxParticipantModule.forRootAsync({ ...extras, imports: [WalletConfigModule.with(options)], useClass: WalletParticipantOptions });
  }
}

/** A health route as the Terminus docs write it, with the participant's indicator. */
@Controller('health')
export class WalletHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly dtx: DtxParticipantHealthIndicator,
  ) {}

  @Get()
  check() {
    return this.health.check([() => this.dtx.isHealthy('dtx', { timeoutMs: 1_000 })]);
  }
}

/** The health route in a module of its own, which sees the indicator only when DtxParticipantModule is global. */
@Module({ imports: [TerminusModule], controllers: [WalletHealthController] })
export class WalletHealthModule {}

@Module({})
export class WalletApp {
  /**
   * `databases.default`: the default DataSource's database (none when absent);
   * `databases.named`: a DataSource named `name` (for the `dataSource` option).
   */
  static with(participant: DynamicModule, databases: { default?: string; named?: { name: string; url: string } }, more: Pick<ModuleMetadata, 'imports'> = {}): DynamicModule {
    const typeorm: DynamicModule[] = [];
    if (databases.default) typeorm.push(TypeOrmModule.forRoot({ type: 'postgres', url: databases.default, synchronize: false, retryAttempts: 0 }));
    if (databases.named) typeorm.push(TypeOrmModule.forRoot({ name: databases.named.name, type: 'postgres', url: databases.named.url, synchronize: false, retryAttempts: 0 }));
    const providers: Provider[] = [Wallet];
    return { module: WalletApp, imports: [...typeorm, participant, ...(more.imports ?? [])], providers };
  }
}
