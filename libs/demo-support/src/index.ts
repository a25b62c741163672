export * from './service-env.js';
export * from './bootstrap.js';
export * from './participant-modules.js';
export * from './payloads.js';
export * from './accounts.dto.js';
export * from './crash-hook.js';
