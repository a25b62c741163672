import { Logger } from '@nestjs/common';
import { ClientNats, ClientRMQ, type NatsOptions, type RmqOptions } from '@nestjs/microservices';
import { describeCause, type OutageEpisode } from '../logging/outage-episode.js';

/**
 * A NestJS client's own Logger, except that the error lines it writes when its connection to the
 * broker drops go to debug: a broker restart is an outage the episode reports (one warn line),
 * not a bug. Every other error line of the client stays an error.
 */
export class ConnectionLossLogger extends Logger {
  constructor(
    context: string,
    /** Whether an error line is about the lost connection. */
    private readonly aboutLoss: (message: unknown) => boolean,
  ) {
    super(context);
  }

  override error(message: unknown, ...rest: unknown[]): void {
    if (this.aboutLoss(message)) {
      // ClientRMQ logs the connection manager's `{ err }` as it is: one readable line instead.
      super.debug(describeCause(message));
      return;
    }
    super.error(message, ...rest);
  }
}

/**
 * ClientRMQ (one per request/reply participant) reporting its connection to the RabbitMQ
 * episode. On a dropped connection it first sets its status to disconnected and then logs two
 * error lines ("Disconnected from RMQ. Trying to reconnect." and the error): while the status
 * says disconnected, its error lines are about that.
 */
export class OutageAwareRmqClient extends ClientRMQ {
  protected override readonly logger: Logger;

  constructor(
    options: Required<RmqOptions>['options'],
    outage: OutageEpisode,
    /** This connection, among the episode's others. */
    source: string,
  ) {
    super(options);
    let down = false;
    this.logger = new ConnectionLossLogger('ClientProxy', () => down);
    // Status values are a const enum of strings in Nest's typings: compared as strings.
    this.status.subscribe((status: string) => {
      if (status === 'disconnected') {
        down = true;
        outage.failed(`${source}: connection lost, reconnecting`, source);
      } else if (status === 'connected') {
        down = false;
        outage.recovered(source);
      }
    });
  }
}

/** The line ClientNats logs at error when its connection drops (it then reconnects by itself). */
const NATS_DISCONNECT_LINE = /^NatsError: type: "disconnect"/;

/**
 * ClientNats reporting its connection to the NATS episode. It logs the drop before it sets its
 * status, so its line is known by its words; its other error lines (the server's asynchronous
 * errors, a permissions violation) stay errors.
 */
export class OutageAwareNatsClient extends ClientNats {
  protected override readonly logger: Logger;

  constructor(options: Required<NatsOptions>['options'], outage: OutageEpisode, source = 'connection') {
    super(options);
    this.logger = new ConnectionLossLogger('ClientNats', (message) => typeof message === 'string' && NATS_DISCONNECT_LINE.test(message));
    this.status.subscribe((status: string) => {
      if (status === 'disconnected') outage.failed(`${source} lost, reconnecting`, source);
      else if (status === 'connected') outage.recovered(source);
    });
  }
}
