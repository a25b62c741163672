import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthCheckResult,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import { Public } from '../auth/roles.decorator.js';
import { TxEventBus } from '../bus/tx-event-bus.js';
import { CoordinatorConfig } from '../config/coordinator.config.js';

/** Liveness (the process answers) and readiness (Postgres and, when configured, Redis answer). */
@ApiTags('operations')
@Controller('health')
// Orchestrators probe these without credentials; they reveal only up/down and dependency status.
@Public()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly bus: TxEventBus,
    private readonly config: CoordinatorConfig,
  ) {}

  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => this.database.pingCheck('database').withTimeout(1_500)];
    if (this.config.redisUrl) {
      checks.push(() => this.indicators.check('redis').attempt(() => this.bus.ping()).withTimeout(1_500));
    }
    return this.health.check(checks);
  }
}
