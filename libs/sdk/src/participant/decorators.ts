import { SetMetadata, applyDecorators } from '@nestjs/common';
import type { Mode, Phase } from '@app/protocol';

export const PARTICIPANT_METADATA = 'dtx:participant';
export const ACTION_METADATA = 'dtx:action';

/** What an action decorator records on its phase-1 method. */
export interface ActionMetadata {
  /** Action name as the coordinator and clients know it. */
  name: string;
  mode: Mode;
  /** Names of the methods (on the same class) that run each phase. */
  methods: Partial<Record<Phase, string>>;
}

/** Marks a provider as holding transactional actions. The participant's name is set in the module options. */
export const TransactionParticipant = (): ClassDecorator => SetMetadata(PARTICIPANT_METADATA, true);

export interface TccActionOptions {
  /** Action name; defaults to the method name. */
  name?: string;
  /** Method that confirms what try reserved. */
  confirm: string;
  /** Method that cancels what try reserved. */
  cancel: string;
}

/**
 * Declares a TCC action: the decorated method is `try`; `confirm` and `cancel` name sibling
 * methods. Every phase runs inside the barrier, in the participant's own database transaction.
 */
export function TccAction(options: TccActionOptions): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const metadata: ActionMetadata = {
      name: options.name ?? String(propertyKey),
      mode: 'tcc',
      methods: { try: String(propertyKey), confirm: options.confirm, cancel: options.cancel },
    };
    applyDecorators(SetMetadata(ACTION_METADATA, metadata))(target, propertyKey, descriptor);
  };
}
