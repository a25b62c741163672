export * from './states.js';
export * from './error-codes.js';
export * from './views.js';
export * from './participant-call.js';
export * from './dto/transaction.dto.js';
export * from './dto/participant.dto.js';
export * from './signing.js';
export * from './hosts.js';
