import { Module } from '@nestjs/common';
import { RetentionService } from './retention.service.js';
import { RetentionStore } from '../store/retention.store.js';

/**
 * Deletes finished transactions past RETENTION_DAYS. Needs ScheduleModule.forRoot() (global)
 * and the TypeORM DataSource in the app.
 */
@Module({ providers: [RetentionStore, RetentionService], exports: [RetentionService] })
export class RetentionModule {}
