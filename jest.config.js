// One Jest run, three projects: unit (pure libraries), integration (NestJS apps in-process against
// the real Postgres and NATS) and e2e (services as separate processes). Every test file creates its
// own database and NATS subject prefix, so files run in parallel.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^@blixard/([a-z-]+)$': '<rootDir>/libs/$1/src/index.ts',
    // Prisma's generated client imports './x.js' for TypeScript sources.
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
};

module.exports = {
  // Per-project testTimeout is ignored by Jest 30; e2e tests that start processes need minutes.
  testTimeout: 180_000,
  reporters: ['default', '<rootDir>/libs/testing/jest/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/*/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs}/*/test/**/*.int.test.ts'],
      globalSetup: '<rootDir>/libs/testing/jest/global-setup.js',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/libs/testing/e2e/**/*.e2e.test.ts'],
      globalSetup: '<rootDir>/libs/testing/jest/global-setup.js',
    },
  ],
};
