import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// The SDK's data-layer subpaths (`@nest-dtx/sdk/pg`...) first: an alias matches by prefix.
const alias = [
  { find: /^@nest-dtx\/sdk\/([a-z0-9-]+)$/, replacement: fileURLToPath(new URL('./libs/sdk/src/data-layers/$1/index.ts', import.meta.url)) },
  ...Object.entries({
  '@nest-dtx/protocol': fileURLToPath(new URL('./libs/protocol/src/index.ts', import.meta.url)),
  '@nest-dtx/sdk': fileURLToPath(new URL('./libs/sdk/src/index.ts', import.meta.url)),
  '@app/demo-support': fileURLToPath(new URL('./libs/demo-support/src/index.ts', import.meta.url)),
  }).map(([find, replacement]) => ({ find, replacement })),
];

// SWC compiles the tests and the code they import: unlike esbuild it emits the decorator
// metadata NestJS dependency injection and class-validator rely on.
const plugins = [
  swc.vite({
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    },
  }),
];

// The projects that use services (Postgres, Redis, brokers, spawned processes): the global set-up
// checks the machine's prerequisites and starts the run's own Postgres; the safety net stops and
// drops, after each file, what the file left. The unit project has neither: it needs nothing.
const withServices = {
  globalSetup: ['test/support/global-setup.ts'],
  setupFiles: ['test/support/setup.ts', 'test/support/safety-net.ts'],
};

export default defineConfig({
  plugins,
  resolve: { alias },
  test: {
    projects: [
      {
        plugins,
        resolve: { alias },
        test: { name: 'unit', include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts'], environment: 'node', setupFiles: ['test/support/setup.ts'] },
      },
      {
        plugins,
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          ...withServices,
          testTimeout: 30_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        plugins,
        resolve: { alias },
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          ...withServices,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
