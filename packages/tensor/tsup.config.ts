import { libraryConfig } from '../../tsup.shared';

export default libraryConfig({
  // backend.ts resolves the wasm binaries with createRequire(import.meta.url), also in the CJS build.
  shims: true,
  // tfjs-core ships its gradient registrations only as extensionless ESM; see src/register-gradients.ts.
  noExternal: ['@tensorflow/tfjs-core/dist/register_all_gradients'],
});
