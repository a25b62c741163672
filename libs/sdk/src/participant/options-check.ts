import { isLoopbackHost, natsBranchSubject, natsSubjectProblem, parseSigningSecret } from '@nest-dtx/protocol';
import { registrationAddress } from './participant-address.js';
import type { ParticipantModuleOptions } from './participant.options.js';

/** An address the participant is reachable at: how to show it, and its host (null when it cannot be read). */
interface Reachable {
  shown: string;
  host: string | null;
}

/** A URL as shown in an error line: scheme, host, port and path, never credentials. */
function withoutCredentials(url: string): Reachable {
  try {
    const parsed = new URL(url);
    return { shown: `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`, host: parsed.hostname };
  } catch {
    return { shown: 'an address that is not a URL', host: null };
  }
}

/** Every address a call could come in at: the HTTP routes (which always exist) and the message transport. */
function reachableAt(options: ParticipantModuleOptions): Reachable[] {
  const addresses: Reachable[] = [];
  if (options.publicUrl) addresses.push(withoutCredentials(`${options.publicUrl.replace(/\/+$/, '')}/${options.path ?? 'tx'}`));
  const transport = options.transport;
  if (transport?.kind === 'tcp') addresses.push({ shown: `tcp://${transport.host}:${transport.port}`, host: transport.host });
  // On a broker, whoever can publish to it can send calls: its address counts as the participant's.
  if (transport?.kind === 'redis' || transport?.kind === 'rabbitmq' || transport?.kind === 'nats') addresses.push(withoutCredentials(transport.url));
  return addresses;
}

/**
 * The start-up rules of signed calls (PROTOCOL.md 5.5): throws one line, never quoting the
 * secret, when the options could not work or would leave the participant open to anyone.
 */
export function checkParticipantOptions(options: ParticipantModuleOptions): void {
  const who = `participant ${options.name}`;
  if (options.dataLayer !== undefined && options.dataSource !== undefined) {
    throw new Error(`${who}: give dataLayer or dataSource (a TypeORM DataSource's name), not both`);
  }
  if (options.at !== undefined) checkAtOptions(who, options.at);
  if (options.schemaCheck !== undefined && options.schemaCheck !== 'fail' && options.schemaCheck !== 'warn') {
    throw new Error(`${who}: schemaCheck must be 'fail' or 'warn'`);
  }
  if (options.signingSecret !== undefined) {
    try {
      parseSigningSecret(options.signingSecret);
    } catch (error) {
      throw new Error(`${who}: signingSecret is not valid (${(error as Error).message})`);
    }
  }
  if (options.transport?.kind === 'nats') {
    const problem = natsSubjectProblem(natsBranchSubject(options.name));
    if (problem) throw new Error(`${who}: on the nats transport its calls come on subject ${natsBranchSubject(options.name)}, and ${problem}`);
  }
  // Throws its own line when the transport lacks an address to register (http without publicUrl).
  if (options.register !== false) registrationAddress(options);
  const refresh = options.registrationRefreshMs;
  if (refresh !== undefined && !(refresh === 0 || (Number.isInteger(refresh) && refresh >= 1000))) {
    throw new Error(`${who}: registrationRefreshMs must be 0 (never) or at least 1000`);
  }
  if (options.verifySignatures === false) {
    // Unsigned calls are only safe where nobody else can send them.
    const open = reachableAt(options).find((address) => address.host === null || !isLoopbackHost(address.host));
    if (open) throw new Error(`${who}: verifySignatures is off but it is reachable at ${open.shown}; anyone who reaches it could run its branches`);
    return;
  }
  if (options.register === false && options.signingSecret === undefined) {
    throw new Error(`${who}: register is false and verifySignatures is on, but there is no signingSecret: it could never accept a call`);
  }
}

function checkAtOptions(who: string, at: NonNullable<ParticipantModuleOptions['at']>): void {
  if (!Array.isArray(at.tables) || at.tables.length === 0 || at.tables.some((table) => typeof table !== 'string' || table.trim() === '')) {
    throw new Error(`${who}: at.tables must list the tables its AT actions write (table names)`);
  }
  const whole = (value: number | undefined, min: number) => value === undefined || (Number.isSafeInteger(value) && value >= min);
  if (!whole(at.lockWaitMs, 0)) throw new Error(`${who}: at.lockWaitMs must be a whole number of milliseconds, 0 or more`);
  if (!whole(at.cleanupDelayMs, 0)) throw new Error(`${who}: at.cleanupDelayMs must be a whole number of milliseconds, 0 or more`);
  if (!whole(at.cleanupBatchSize, 1)) throw new Error(`${who}: at.cleanupBatchSize must be a whole number, 1 or more`);
  if (!whole(at.leftoverSweepIntervalMs, 1000)) throw new Error(`${who}: at.leftoverSweepIntervalMs must be at least 1000`);
}

/**
 * The options the module runs with, once known (forRoot's, or what forRootAsync's factory
 * returned): the route prefix the module was declared with, then checkParticipantOptions.
 * The routes exist before a factory runs, so a factory cannot move them elsewhere.
 */
export function resolveParticipantOptions(options: ParticipantModuleOptions, declaredPath: string): ParticipantModuleOptions {
  if (options.path !== undefined && options.path !== declaredPath) {
    throw new Error(`participant ${options.name}: the module's routes were declared at path ${declaredPath} (forRootAsync({ path })) but the options say ${options.path}`);
  }
  const resolved = { ...options, path: declaredPath };
  checkParticipantOptions(resolved);
  return resolved;
}
