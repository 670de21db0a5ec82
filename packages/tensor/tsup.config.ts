import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // backend.ts resolves the wasm binaries with createRequire(import.meta.url), also in the CJS build.
  shims: true,
  noExternal: ['@tensorflow/tfjs-core/dist/register_all_gradients'],
});
