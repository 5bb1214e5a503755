// The layering of the tree, checked by `npm run lint` (README, "Layout").
// Why: libs/ is what several users share, so it must not depend on any one
// of them; a service that imports another cannot be deployed, scaled or
// replaced alone; the CLI and scripts are users of libs/ like the services,
// and reaching into a service's internals would tie them to its layout.
/** @type {import('dependency-cruiser').IConfiguration} */
const TESTS = '(\\.test\\.ts$|^test/)';

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle means two modules are one decision split in two places.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'libs-import-libs-only',
      severity: 'error',
      comment: 'libs/ is shared by services, cli and scripts: it imports nothing above it.',
      from: { path: '^libs/', pathNot: TESTS },
      to: { path: '^(services|cli|scripts|test|deploy)/' },
    },
    {
      name: 'services-never-import-services',
      severity: 'error',
      comment: 'Each service is deployed, scaled and replaced alone; what two share belongs in libs/.',
      from: { path: '^services/([^/]+)/', pathNot: TESTS },
      to: { path: '^services/', pathNot: '^services/$1/' },
    },
    {
      name: 'services-import-libs-and-themselves',
      severity: 'error',
      comment: 'A service is composed from libs/ and its own folder.',
      from: { path: '^services/', pathNot: TESTS },
      to: { path: '^(cli|scripts|test|deploy)/' },
    },
    {
      name: 'cli-imports-libs-only',
      severity: 'error',
      comment: 'The CLI is a user of libs/ like a service; a service internal it needs belongs in libs/.',
      from: { path: '^cli/', pathNot: TESTS },
      to: { path: '^(services|scripts|test|deploy)/' },
    },
    {
      name: 'scripts-import-libs-and-test-aids',
      severity: 'error',
      comment: 'Benchmarks and drills use libs/ and the shared test aids, never a service internal.',
      from: { path: '^scripts/' },
      to: { path: '^(services|cli|deploy)/' },
    },
    {
      name: 'deploy-imports-libs-only',
      severity: 'error',
      comment: 'The local stack scripts are thin entry points over libs/.',
      from: { path: '^deploy/' },
      to: { path: '^(services|cli|scripts|test)/' },
    },
    {
      name: 'test-aids-stay-out-of-production',
      severity: 'error',
      comment: 'Fixtures, fake clients and crash hooks do not ship in the build.',
      from: { path: '^(libs|services|cli)/', pathNot: TESTS },
      to: { path: '(^test/|\\.test\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.hub|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
