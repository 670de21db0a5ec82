import { libraryConfig } from '../../tsup.shared';

export default libraryConfig({
  // The public entries (declarations): the main entry, the subpaths without side effects (see
  // package.json `exports`), the conformance suite.
  entry: [
    'src/index.ts',
    'src/errors.ts',
    'src/float16.ts',
    'src/random.ts',
    'src/runtime.ts',
    'src/select.ts',
    'src/untrusted.ts',
    'src/wasm-binary.ts',
    'src/wasm-heap.ts',
    'src/register-gradients.ts',
    'src/conformance.ts',
  ],
  // Part of register-gradients.js, so that the whole registration is one file with side effects.
  inlined: ['src/tfjs-core-first.ts'],
  // backend.ts resolves the wasm binaries with createRequire(import.meta.url), also in the CJS build.
  shims: true,
  // tfjs-core ships its gradient registrations only as extensionless ESM; see src/register-gradients.ts.
  noExternal: ['@tensorflow/tfjs-core/dist/register_all_gradients'],
  // Imports of this package by its own name (the gradient registration, the conformance suite's
  // import of the main entry) stay imports: register-gradients.js keeps its own file.
  external: ['@fineprune/tensor'],
});
