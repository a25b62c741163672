import type { AdminCommand } from './arguments.js';
import type { AdminAnswer, AdminClient } from './admin-client.js';
import * as render from './render.js';

/** Runs one admin command; resolves with what to print on stdout (the API's JSON as sent with --json). */
export async function runAdminCommand(command: AdminCommand, client: AdminClient, json: boolean): Promise<string> {
  const show = <T>(answer: AdminAnswer<T>, forPeople: (body: T) => string): string => (json ? answer.text.trimEnd() : forPeople(answer.body));
  switch (command.name) {
    case 'tx list':
      return show(await client.listTransactions(command.filters), render.transactionPage);
    case 'locks':
      return show(await client.heldLocks(command.filters), render.heldLocks);
    case 'tx show':
      return show(await client.transaction(command.gid), render.transactionDetail);
    case 'tx retry':
      return show(await client.retry(command.gid), (view) => render.transactionAction(view, 'retry'));
    case 'tx rollback':
      return show(await client.rollback(command.gid), (view) => render.transactionAction(view, 'rollback'));
    case 'participants':
      return show(await client.participants(), render.participantList);
    case 'participants rotate-secret':
      return show(await client.rotateSecret(command.participant, command.overlapSeconds), render.secretRotation);
    case 'participants release':
      return show(await client.release(command.participant), render.participantRelease);
    case 'stats':
      return show(await client.stats(), render.counts);
  }
}
