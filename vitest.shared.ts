import { defineConfig } from 'vitest/config';

/**
 * Shared Vitest configuration: tests resolve workspace packages to their TypeScript sources
 * through the `source` export condition, so `pnpm test` needs no build first.
 */
export default defineConfig({
  resolve: { conditions: ['source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['source', 'module', 'node', 'import', 'default'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: './node_modules/.vitest/report.json' },
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
  },
});
