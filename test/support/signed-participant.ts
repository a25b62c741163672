import type { AddressInfo } from 'node:net';
import {
  ForbiddenException,
  Injectable,
  Module,
  type CanActivate,
  type DynamicModule,
  type ExecutionContext,
  type INestApplication,
  type LoggerService,
  type Provider,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { TypeOrmModule } from '@nestjs/typeorm';
import { callId, signCall, type Json, type PhaseCallBody, type SignedCallHeaders } from '@nest-dtx/protocol';
import {
  connectParticipantTransport,
  DtxParticipantModule,
  SagaAction,
  TransactionParticipant,
  type BranchContext,
  type ParticipantModuleOptions,
} from '@nest-dtx/sdk';

/** The business table of the test participant: one row per business call that took effect. */
export const LEDGER_DDL = `CREATE TABLE ledger (id serial PRIMARY KEY, gid text NOT NULL, phase text NOT NULL, amount int NOT NULL)`;

/** A participant whose business records every call, in memory and (with the barrier) in its database. */
@Injectable()
@TransactionParticipant()
export class RecordingLedger {
  readonly calls: string[] = [];

  @SagaAction({ name: 'credit', compensate: 'undoCredit' })
  async credit(payload: Json, context: BranchContext): Promise<Json> {
    return this.record(payload, context);
  }

  async undoCredit(payload: Json, context: BranchContext): Promise<Json> {
    return this.record(payload, context);
  }

  private async record(payload: Json, { gid, phase, manager }: BranchContext): Promise<Json> {
    const fields = typeof payload === 'object' && payload !== null && !Array.isArray(payload) ? payload : {};
    const amount = typeof fields.amount === 'number' ? fields.amount : 0;
    this.calls.push(`${gid}/${phase}`);
    // An unexpected failure (not a BusinessFailure), after the business began: transient.
    if (fields.explode === true) throw new Error('the ledger exploded');
    await manager.query(`INSERT INTO ledger (gid, phase, amount) VALUES ($1, $2, $3)`, [gid, phase, amount]);
    return { credited: amount };
  }
}

/** Nest's log lines, kept for assertions. */
export class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message: String(message) });
  }
}

/** A guard of the host app, as a team may put in front of every route (the SDK's included). */
function headerGuard(name: string, value: string): Provider {
  class RequiredHeaderGuard implements CanActivate {
    canActivate(context: ExecutionContext): boolean {
      const headers = context.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined> }>().headers;
      if (headers[name] !== value) throw new ForbiddenException(`${name} required`);
      return true;
    }
  }
  return { provide: APP_GUARD, useClass: RequiredHeaderGuard };
}

@Module({})
class ParticipantTestApp {
  static with(databaseUrl: string, options: ParticipantModuleOptions, requiredHeader?: { name: string; value: string }): DynamicModule {
    return {
      module: ParticipantTestApp,
      imports: [TypeOrmModule.forRoot({ type: 'postgres', url: databaseUrl, synchronize: false, retryAttempts: 0 }), DtxParticipantModule.forRoot(options)],
      providers: [RecordingLedger, ...(requiredHeader ? [headerGuard(requiredHeader.name, requiredHeader.value)] : [])],
    };
  }
}

export interface StartedApp {
  app: INestApplication;
  /** `http://127.0.0.1:<port>`: the participant's routes are under `/tx` unless its path says otherwise. */
  url: string;
  logger: CapturingLogger;
}

export interface StartedParticipant extends StartedApp {
  ledger: RecordingLedger;
}

export interface AppStart {
  /** Create the app with `rawBody: true` (as a participant should be). Default true. */
  rawBody?: boolean;
  /** HTTP port; random by default. */
  port?: number;
  /** The HTTP platform. Default Express. */
  platform?: 'express' | 'fastify';
}

/**
 * A real app holding a DtxParticipantModule: created on Express or Fastify, its microservice
 * transport connected by connectParticipantTransport from the module's own options (whatever
 * forRoot or forRootAsync's factory gave it), then HTTP on a loopback port.
 */
export async function startApp(module: DynamicModule, { rawBody = true, port = 0, platform = 'express' }: AppStart = {}): Promise<StartedApp> {
  const logger = new CapturingLogger();
  const app =
    platform === 'fastify'
      ? await NestFactory.create(module, new FastifyAdapter(), { logger, rawBody, abortOnError: false })
      : await NestFactory.create(module, { logger, rawBody, abortOnError: false });
  await connectParticipantTransport(app);
  await app.listen(port, '127.0.0.1');
  const listening = (app.getHttpServer() as { address(): AddressInfo }).address().port;
  return { app, url: `http://127.0.0.1:${listening}`, logger };
}

/**
 * A real participant app: DtxParticipantModule.forRoot on a real Postgres, HTTP on a loopback port
 * (random unless given: one that registers must know its publicUrl first), plus the TCP or
 * Redis microservice its options name, and optionally a global guard requiring a header. Created with `rawBody: true`
 * unless told otherwise, as the demo bootstrap does (startApp).
 */
export async function startParticipant(
  databaseUrl: string,
  options: ParticipantModuleOptions,
  { requiredHeader, ...start }: AppStart & { requiredHeader?: { name: string; value: string } } = {},
): Promise<StartedParticipant> {
  const started = await startApp(ParticipantTestApp.with(databaseUrl, options, requiredHeader), start);
  return { ...started, ledger: started.app.get(RecordingLedger) };
}

/** A port free right now on 127.0.0.1 (for a TCP microservice, which must be given one). */
export { freePort } from '../../scripts/lib/stack.js';

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export const creditCall = (gid: string, amount = 5): PhaseCallBody => ({ gid, branchId: 'b1', mode: 'saga', action: 'credit', phase: 'execute', payload: { amount } });

/** The headers the coordinator sends with `body` (PROTOCOL.md 5.5), signed with `key` over JSON.stringify(body). */
export function sign(key: Buffer, body: unknown, { at = nowSeconds(), id }: { at?: number; id?: string } = {}): SignedCallHeaders {
  return signCall([key], id ?? callId(body as PhaseCallBody), at, JSON.stringify(body));
}
