import type { Json } from '@nest-dtx/protocol';

/**
 * Thrown by a business method to refuse the branch (insufficient funds, out of stock). The
 * barrier rolls the local transaction back and the participant answers 409, which the
 * coordinator records as the branch's failure. Any other error is transient: it is retried.
 */
export class BusinessFailure extends Error {
  constructor(
    message: string,
    readonly details: Json = null,
  ) {
    super(message);
    this.name = 'BusinessFailure';
  }
}
