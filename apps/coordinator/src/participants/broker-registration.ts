import { ErrorCode, natsBranchSubject, natsSubjectProblem, type RegisterParticipantDto } from '@nest-dtx/protocol';

/** Which broker connections this coordinator instance has (REDIS_URL, RABBITMQ_URL, NATS_URL set). */
export interface ConfiguredBrokers {
  redis: boolean;
  rabbitmq: boolean;
  nats: boolean;
}

/** Why a registration is refused: a 400 with this code, naming this field. */
export interface RegistrationProblem {
  code: ErrorCode;
  field: string;
  message: string;
}

/** The broker transports whose participants may be publish targets. */
const PUBLISH_TRANSPORTS: readonly string[] = ['rabbitmq', 'nats'];

/**
 * The rules of a registration that depend on the brokers (docs/transports.md "RabbitMQ and NATS"), or null
 * when there is none to break:
 * - a broker transport needs the coordinator's own connection to that broker;
 * - `publish` only with rabbitmq or nats, and then every action takes mode msg alone: a publish
 *   gets no reply, and only msg's `execute` needs none;
 * - on NATS every subject derived from the registration is one that can be published to.
 */
export function brokerRegistrationProblem(
  registration: Pick<RegisterParticipantDto, 'name' | 'transport' | 'publish' | 'actions'>,
  brokers: ConfiguredBrokers,
): RegistrationProblem | null {
  const { transport } = registration;
  if (transport === 'redis' && !brokers.redis) {
    // VALIDATION_FAILED as before the broker transports came: clients may already match on it.
    return { code: ErrorCode.VALIDATION_FAILED, field: 'transport', message: 'transport redis needs a coordinator started with REDIS_URL' };
  }
  if ((transport === 'rabbitmq' && !brokers.rabbitmq) || (transport === 'nats' && !brokers.nats)) {
    const variable = transport === 'rabbitmq' ? 'RABBITMQ_URL' : 'NATS_URL';
    return {
      code: ErrorCode.TRANSPORT_NOT_CONFIGURED,
      field: 'transport',
      message: `transport ${transport} needs a coordinator started with ${variable}; this one has no ${transport === 'rabbitmq' ? 'RabbitMQ' : 'NATS'} connection`,
    };
  }
  const publish = registration.publish === true;
  if (publish && !PUBLISH_TRANSPORTS.includes(transport)) {
    return { code: ErrorCode.VALIDATION_FAILED, field: 'publish', message: `publish targets are RabbitMQ queues or NATS JetStream subjects: publish needs transport rabbitmq or nats, not ${transport}` };
  }
  if (publish) {
    for (const [i, action] of registration.actions.entries()) {
      if (action.modes.length === 0 || action.modes.some((mode) => mode !== 'msg')) {
        return {
          code: ErrorCode.VALIDATION_FAILED,
          field: `actions.${i}.modes`,
          message: 'a publish target gets no reply, so its actions take mode msg only (modes ["msg"]: the message\'s execute)',
        };
      }
      const problem = transport === 'nats' ? natsSubjectProblem(action.name) : null;
      if (problem) return { code: ErrorCode.VALIDATION_FAILED, field: `actions.${i}.name`, message: `action ${action.name} is the JetStream subject published to, and ${problem}` };
    }
    return null;
  }
  if (transport === 'nats') {
    const problem = natsSubjectProblem(natsBranchSubject(registration.name));
    if (problem) return { code: ErrorCode.VALIDATION_FAILED, field: 'name', message: `a nats participant's calls go to subject ${natsBranchSubject(registration.name)}, and ${problem}` };
  }
  return null;
}
