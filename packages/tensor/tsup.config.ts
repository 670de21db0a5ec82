import { libraryConfig } from '../../tsup.shared';

export default libraryConfig({
  // errors, wasm-binary and wasm-heap are side-effect-free subpaths (see `sideEffects` in package.json).
  entry: ['src/index.ts', 'src/conformance.ts', 'src/errors.ts', 'src/wasm-binary.ts', 'src/wasm-heap.ts'],
  // backend.ts resolves the wasm binaries with createRequire(import.meta.url), also in the CJS build.
  shims: true,
  // tfjs-core ships its gradient registrations only as extensionless ESM; see src/register-gradients.ts.
  noExternal: ['@tensorflow/tfjs-core/dist/register_all_gradients'],
  // The conformance entry imports the package's main entry by name, so both entries share one
  // backend registry (also in the CJS build, which tsup does not split into shared chunks).
  external: ['@fineprune/tensor'],
});
