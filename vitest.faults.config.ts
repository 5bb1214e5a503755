import { defineConfig } from 'vitest/config';

// The fault suite (test/faults/): a three-broker cluster of each test's own,
// brokers, adapters and projectors killed and restarted. Minutes per test, so
// it is not part of `vitest run` (see vitest.config.ts) but runs on its own:
// `npm run test:faults`, nightly through scripts/faults-nightly.sh.
export default defineConfig({
  test: {
    name: 'faults',
    include: ['test/faults/**/*.fault.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 1_800_000,
    // Set-up compiles services and starts a cluster: over ten minutes on a loaded two-core machine.
    hookTimeout: 1_200_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
