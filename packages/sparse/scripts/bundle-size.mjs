// Measures what @fineprune/sparse costs in a browser bundle: esbuild bundles everything the package
// exports, minified, for the browser, with @tensorflow/tfjs-core left external (a peer dependency the
// application already has), and gzips the result. It fails when the bundle pulls in anything of the
// training stack: fineprune's core, the main entry of @fineprune/tensor (which registers gradients and
// backends), TF.js's gradient registrations, or a TF.js backend package.
//
//   node scripts/bundle-size.mjs            from the built dist (run `pnpm build` here and in
//                                           packages/tensor first): the figure the README states
//   node scripts/bundle-size.mjs --source   from the TypeScript sources (what the tests check)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const FORBIDDEN =
  /@fineprune\/core|packages\/core\/|tensor\/dist\/index\.|tensor\/src\/index\.|tensor\/src\/backend\.|register_all_gradients|tfjs-backend-(cpu|wasm|webgpu|webgl)/;

/**
 * Bundles the package and returns its minified and gzipped sizes, the bundled files, and those of
 * them that belong to the training stack (which must be none).
 */
export async function measureBundle({ fromSource = false } = {}) {
  const result = await build({
    stdin: {
      contents: "export * from '@fineprune/sparse';",
      resolveDir: path.join(here, '..'),
      loader: 'js',
    },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: fromSource ? ['source'] : [],
    // tfjs-core: the application's own copy. path, url: imported (unused) by tsup's ESM shim in
    // @fineprune/tensor's shared dist chunk until its build stops emitting it (issue 13).
    external: ['@tensorflow/tfjs-core', 'path', 'url'],
    metafile: true,
    write: false,
    // Errors only: esbuild warns that the shim chunk's bare imports are dropped, which is the point.
    logLevel: 'error',
  });
  const code = result.outputFiles[0].contents;
  const inputs = Object.keys(result.metafile.inputs);
  return {
    package: '@fineprune/sparse',
    from: fromSource ? 'TypeScript sources' : 'built dist',
    bundler: 'esbuild 0.25 (minify, format esm, platform browser, tfjs-core external)',
    minifiedBytes: code.length,
    gzipBytes: gzipSync(code, { level: 9 }).length,
    inputs: inputs.map((file) => file.replace(/^.*node_modules\//, '')),
    forbidden: inputs.filter((file) => FORBIDDEN.test(file)),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const summary = await measureBundle({ fromSource: process.argv.includes('--source') });
  console.log(JSON.stringify(summary, null, 2));
  if (summary.forbidden.length > 0) {
    console.error(`The sparse bundle pulls in the training stack: ${summary.forbidden.join(', ')}`);
    process.exitCode = 1;
  }
}
