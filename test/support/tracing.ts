import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';

/**
 * A real OpenTelemetry SDK registered for a test, as an application registers one: a tracer
 * provider whose finished spans are kept in memory, AsyncLocalStorage for the active context,
 * and the W3C Trace Context propagator. `stop` unregisters all three, so the next test (or file)
 * starts from the API's no-ops again.
 */
export interface TestTracing {
  /** The spans ended so far, in the order they ended. */
  spans(): ReadableSpan[];
  /** The one ended span named `name`; throws when there is none or more than one. */
  span(name: string): ReadableSpan;
  reset(): void;
  stop(): Promise<void>;
}

export function startTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return {
    spans: () => exporter.getFinishedSpans(),
    span(name) {
      const found = exporter.getFinishedSpans().filter((span) => span.name === name);
      if (found.length !== 1) throw new Error(`${found.length} spans named ${name}; ended: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
      return found[0];
    },
    reset: () => exporter.reset(),
    async stop() {
      trace.disable();
      context.disable();
      propagation.disable();
      await provider.shutdown();
    },
  };
}

/** A made-up remote parent: fixed ids, so a test reads them back from the spans. */
export const REMOTE_PARENT = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
} as const;
