// Measures what @fineprune/sparse costs in a browser bundle: esbuild bundles everything the package
// exports from its built dist (run `pnpm build` here and in packages/tensor first), minified, for the
// browser, with @tensorflow/tfjs-core left external (a peer dependency the application already has),
// and gzips the result. It fails when the bundle pulls in anything of the training stack: fineprune's
// core, the main entry of @fineprune/tensor (which registers gradients and backends), or a TF.js
// backend package.
//
//   node scripts/bundle-size.mjs            (prints a JSON summary)
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const result = await build({
  stdin: { contents: "export * from '@fineprune/sparse';", resolveDir: path.join(here, '..'), loader: 'js' },
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  // tfjs-core: the application's own copy. path, url: imported (unused) by tsup's ESM shim in
  // @fineprune/tensor's shared chunk until its build stops emitting it (issue 13).
  external: ['@tensorflow/tfjs-core', 'path', 'url'],
  metafile: true,
  write: false,
  // Errors only: esbuild warns that the shim chunk's bare imports are dropped, which is the point.
  logLevel: 'error',
});
const code = result.outputFiles[0].contents;
const inputs = Object.entries(result.metafile.inputs).map(([file, info]) => ({ file, bytes: info.bytes }));
const forbidden = inputs.filter(({ file }) =>
  /@fineprune\/core|packages\/core\/|tensor\/dist\/index\.|tensor\/src\/index\.|register_all_gradients|tfjs-backend-(cpu|wasm|webgpu|webgl)/.test(
    file,
  ),
);
const summary = {
  package: '@fineprune/sparse',
  bundler: 'esbuild (minify, format esm, platform browser, tfjs-core external)',
  minifiedBytes: code.length,
  gzipBytes: gzipSync(code, { level: 9 }).length,
  inputs: inputs.map(({ file }) => file.replace(/^.*node_modules\//, '')),
  forbidden: forbidden.map(({ file }) => file),
};
console.log(JSON.stringify(summary, null, 2));
if (forbidden.length > 0) {
  console.error(
    'The sparse bundle pulls in the training stack:',
    forbidden.map(({ file }) => file).join(', '),
  );
  process.exitCode = 1;
}
