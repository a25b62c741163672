import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '@nest-dtx/protocol';
import { ApiAnswer, ApiErrors } from '../docs/api-responses.js';
import { HealthResultSchema } from '../docs/view-schemas.js';
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
import { DependencyOutages } from '../logging/dependency-outages.js';
import { reportedTo } from './reported-check.js';

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
    private readonly outages: DependencyOutages,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiAnswer(200, HealthResultSchema, 'Alive.')
  // Documented above, by view-schemas.ts: terminus's own schema is not the answer's.
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @ApiOperation({ summary: 'Readiness: Postgres and, when configured, Redis answer' })
  @ApiAnswer(200, HealthResultSchema, 'Ready.')
  @ApiErrors({ status: 503, codes: [ErrorCode.NOT_READY], why: 'a dependency does not answer; `details` says which' })
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  ready(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => reportedTo(this.outages.postgres, 'database', this.database.pingCheck('database').withTimeout(1_500))];
    if (this.config.redisUrl) {
      // The bus pings over its publisher connection, one of the two the Redis episode follows.
      checks.push(() => reportedTo(this.outages.redis, 'redis', this.indicators.check('redis').attempt(() => this.bus.ping()).withTimeout(1_500), 'publisher'));
    }
    return this.health.check(checks);
  }
}
