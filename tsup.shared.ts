import { defineConfig, type Options } from 'tsup';

/**
 * The build every library package shares: ESM and CJS with declarations and source maps, from
 * `src/index.ts`. A package passes only what differs (extra entries, shims, bundled modules).
 */
export function libraryConfig(overrides: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    ...overrides,
  });
}
