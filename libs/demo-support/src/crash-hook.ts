import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { tap, type Observable } from 'rxjs';

/**
 * A fault for the end-to-end tests and demos (CRASH_AFTER_PHASE=`<action>/<phase>`, HTTP
 * transport): the service kills itself (SIGKILL, no clean-up) right after the SDK has run that
 * phase, its local transaction committed, and before the answer leaves: the crash "between
 * local commit and answer" the coordinator must survive.
 */
export class CrashAfterPhase implements NestInterceptor {
  private readonly action: string;
  private readonly phase: string;

  constructor(spec: string) {
    const [action, phase] = spec.split('/');
    if (!action || !phase) throw new Error(`CRASH_AFTER_PHASE must be <action>/<phase>, not ${spec}`);
    this.action = action;
    this.phase = phase;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<{ params?: Record<string, string> }>();
    if (request.params?.action !== this.action || request.params?.phase !== this.phase) return next.handle();
    return next.handle().pipe(
      tap(() => {
        process.stderr.write(`CRASH_AFTER_PHASE: ${this.action}/${this.phase} ran; killing myself before the answer\n`);
        process.kill(process.pid, 'SIGKILL');
      }),
    );
  }
}
