// Lint with type information (typescript-eslint's type-checked rules) over every TypeScript
// file the compiler sees. Rules are relaxed only where NestJS idioms clash with them.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', '**/dist/**', 'node_modules/**', '.data/**', 'coverage/**', 'test/consumer-app/**', 'test/fixtures/prisma/generated/**', '.ci/**', '*.config.js', '*.config.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Nest modules and DTOs are classes with only decorators and static members.
      '@typescript-eslint/no-extraneous-class': 'off',
      // Methods are passed as references to decorators and discovery; they are bound there.
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // `void promise` marks a deliberate fire-and-forget.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
    },
  },
  {
    // The web console's browser scripts: plain JavaScript served as is (no build step), so
    // outside the TypeScript project; linted with the JavaScript rules only.
    files: ['apps/coordinator/console/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'fetch', 'EventSource', 'URLSearchParams', 'Node', 'HTMLAnchorElement', 'setTimeout', 'clearTimeout', 'AbortSignal']
          .map((name) => [name, 'readonly']),
      ),
    },
  },
  {
    // The container health check (docker/healthcheck.mjs): plain JavaScript run by node in the
    // image, outside the TypeScript project and the build.
    files: ['docker/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: Object.fromEntries(['process', 'fetch', 'AbortSignal'].map((name) => [name, 'readonly'])),
    },
  },
  {
    // The engine is the only writer of the transaction log (engine/transaction-writer.ts): above
    // the engine, code may name TransactionStore's records as types, never use the store itself.
    // Operator queries are store/transaction.queries.ts's (read only).
    files: ['apps/coordinator/src/**/*.ts'],
    ignores: ['apps/coordinator/src/engine/**', 'apps/coordinator/src/store/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/store/transaction.store.js'],
              allowTypeImports: true,
              message: 'only the engine uses TransactionStore: go through TransactionEngine (reads and writes) or TransactionQueries (operator queries)',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests read loosely typed JSON answers.
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
);
