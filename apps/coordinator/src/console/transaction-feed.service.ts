import { Injectable, type MessageEvent, type OnModuleDestroy } from '@nestjs/common';
import { interval, map, merge, Observable, startWith, Subject, takeUntil } from 'rxjs';
import type { GlobalStatus } from '@nest-dtx/protocol';
import { TxEventBus } from '../bus/tx-event-bus.js';

/** What the console receives for each change: which transaction, and its new status. */
export interface TransactionChangedEvent {
  gid: string;
  status: GlobalStatus;
}

/** How long a browser waits before reconnecting a dropped stream (the SSE `retry` field). */
const RECONNECT_MS = 2_000;
/** A comment this often keeps proxies from closing an idle stream. */
const KEEP_ALIVE_MS = 25_000;

/**
 * The console's live feed: every status change any coordinator instance publishes on the bus
 * (in-process, or Redis pub/sub across instances), as server-sent events. The page refetches
 * what changed; the feed carries no state, so a missed event costs only freshness.
 */
@Injectable()
export class TransactionFeed implements OnModuleDestroy {
  /** Ends every open stream at shutdown; an open response would otherwise hold the server. */
  private readonly closing = new Subject<void>();

  constructor(private readonly bus: TxEventBus) {}

  /**
   * One stream per client. It starts with a `ready` event, after which no change is missed,
   * so the page reloads its data then (also after a reconnect). Unsubscribing, which Nest
   * does when the client disconnects, removes the bus listener.
   */
  changes(): Observable<MessageEvent> {
    const changes = new Observable<MessageEvent>((subscriber) =>
      this.bus.subscribe((message) => {
        if (message.kind !== 'tx') return;
        const data: TransactionChangedEvent = { gid: message.gid, status: message.status };
        subscriber.next({ type: 'tx', data });
      }),
    );
    const keepAlive = interval(KEEP_ALIVE_MS).pipe(map((): MessageEvent => ({ comment: 'keep-alive' })));
    const ready: MessageEvent = { type: 'ready', retry: RECONNECT_MS, data: {} };
    return merge(changes, keepAlive).pipe(startWith(ready), takeUntil(this.closing));
  }

  async onModuleDestroy(): Promise<void> {
    this.closing.next();
    this.closing.complete();
    // The ended responses finish on a later turn of the event loop; the HTTP server closes
    // after this hook and only drops connections idle by then (a busy one keeps it up to
    // its keep-alive timeout). Let them finish first.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
