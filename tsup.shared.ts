import { defineConfig, type Options } from 'tsup';

/** Every module of a package except its tests and test helpers. */
const MODULES = ['src/**/*.ts', '!src/**/*.test.ts', '!src/**/test-support.ts'];

/**
 * The build every library package shares: ESM and CJS, with declarations for the public entries
 * (`entry`, default `src/index.ts`; one per `exports` subpath). A package passes only what differs
 * (extra entries, bundled modules).
 *
 * - One output file per source module (every module is an entry, shared code is split out), not
 *   one bundle per entry: with `"sideEffects": false` a bundler then drops every module an
 *   application does not use, with its imports. A single-file entry would keep every import of a
 *   package with side effects (TF.js, the gradient registration) for the smallest import.
 * - `platform: 'neutral'`: the output runs in browsers as well as in Node. Node built-ins are never
 *   imported at the top of a module: Node-only code reaches them through `@fineprune/tensor/runtime`
 *   (or lives in a Node-only entry such as `./node`, where a `node:` import is external and kept as
 *   written). `scripts/check-browser-safe.mjs` checks every built file after `pnpm build`.
 * - A package whose code reads `import.meta.url` passes `shims: true`: the CommonJS build then gets
 *   a file URL made from `__filename` (no import); with the neutral platform tsup adds no ES-module
 *   shim (that one imports `path` and `url` at the top of every file, which broke browser bundles).
 * - `splitting: true` also for CommonJS, so that code two entries share (the error class, the
 *   runtime state) exists once per format, as in the ES-module build.
 * - No source maps: the published JavaScript is not minified, so stack traces already point at
 *   readable code, and maps were two thirds of the tarballs (see the packages' READMEs).
 */
export function libraryConfig({
  entry = ['src/index.ts'],
  inlined = [],
  ...overrides
}: Options & {
  /** The public entries (one per `exports` subpath): they get declarations. */
  entry?: string[];
  /** Modules with no output file of their own: bundled into the one module that imports them. */
  inlined?: string[];
} = {}) {
  return defineConfig({
    entry: [...MODULES, ...inlined.map((module) => `!${module}`)],
    format: ['esm', 'cjs'],
    dts: { entry },
    sourcemap: false,
    clean: true,
    target: 'es2022',
    platform: 'neutral',
    splitting: true,
    removeNodeProtocol: false,
    ...overrides,
    external: [/^node:/, ...(overrides.external ?? [])],
  });
}
