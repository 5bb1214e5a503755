// Type-aware lint: floating promises and non-exhaustive switches over event
// unions are the two bug classes that silently lose clinical data here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.hub/**', 'coverage/**', 'bin/**', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // kafkajs types its payload callbacks as methods though they are bound
      // closures; destructuring them is the library's documented usage.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Outside tests, a `!` is an unchecked claim: when it is wrong, undefined
    // flows on into an event or a row. Narrow instead, or throw HUB_INTERNAL.
    files: ['**/*.ts'],
    ignores: ['**/*.test.ts', 'test/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'error' },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The console's browser scripts: plain JS served as is (no build), with the browser's and the libraries' globals.
    files: ['services/console/assets/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'script',
      parserOptions: { projectService: false, project: null, program: null },
      globals: {
        document: 'readonly',
        window: 'readonly',
        Chart: 'readonly',
        htmx: 'readonly',
        JSON: 'readonly',
      },
    },
  },
);
