import { defineConfig } from 'vitest/config';

// Tiers: unit tests beside the code (plain data, no servers); *.int.test.ts
// beside the code and end-to-end suites in test/ run against real Kafka, the
// registry and Postgres, started once per run by the global setup.
export default defineConfig({
  test: {
    // The JSON report gives .ci/run its plain "N passed, N failed" closing line.
    reporters: ['default', 'json'],
    outputFile: { json: '.hub/test-results.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'libs/**/*.test.ts',
            'services/**/*.test.ts',
            'cli/**/*.test.ts',
            'scripts/**/*.test.ts',
            'deploy/**/*.test.ts',
          ],
          exclude: ['**/*.int.test.ts', 'node_modules/**', 'dist/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts', 'test/**/*.e2e.test.ts'],
          exclude: ['node_modules/**', 'dist/**', '.hub/**'],
          globalSetup: ['test/support/global-setup.ts'],
          // Saves FHIR answers for the HAPI validator when HUB_FHIR_CAPTURE_DIR is set.
          setupFiles: ['test/support/fhir-capture-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          // Two cores: files run one after another so that Kafka, the
          // registry and the services under test are not starved.
          fileParallelism: false,
        },
      },
    ],
  },
});
