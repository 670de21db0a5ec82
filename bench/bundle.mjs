// Bundles the benchmarks of src/bundle-entry.ts into one ES module, dist-bundle/bench.mjs, with a
// launcher, dist-bundle/run.mjs, for a machine that has Node but no pnpm, workspace or corpora
// (for example a GPU machine without network access). Beside them it copies what cannot be
// bundled: the wasm backend's .wasm binaries and the `webgpu` package (Dawn's native dawn.node for
// linux-x64). Run there:
//
//   node dist-bundle/run.mjs encoderThroughput --backend webgpu --data encoder-data.safetensors
//
// Results go to $FINEPRUNE_BENCH_RESULTS (default: dist-bundle/../results).
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'dist-bundle');
const require = createRequire(path.join(here, 'src', 'harness.ts'));
const packageDir = (name) => path.dirname(require.resolve(`${name}/package.json`));
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [path.join(here, 'src', 'bundle-entry.ts')],
  outfile: path.join(out, 'bench.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['source'],
  external: ['webgpu'],
  // CommonJS dependencies inside an ES module need require, __filename and __dirname.
  banner: {
    js: [
      "import { createRequire as __createRequire } from 'node:module';",
      "import { fileURLToPath as __fileURLToPath } from 'node:url';",
      "import { dirname as __pathDirname } from 'node:path';",
      'const require = __createRequire(import.meta.url);',
      'const __filename = __fileURLToPath(import.meta.url);',
      'const __dirname = __pathDirname(__filename);',
    ].join('\n'),
  },
  logLevel: 'warning',
});
writeFileSync(
  path.join(out, 'run.mjs'),
  `// node run.mjs <benchmark> [arguments]: runs one benchmark of bench.mjs, then exits.
const [name, ...args] = process.argv.slice(2);
const bench = await import('./bench.mjs');
if (typeof bench[name] !== 'function' || name === 'disposeWebGPU') {
  console.error(\`unknown benchmark \${name}; one of: \${Object.keys(bench).filter((key) => key !== 'disposeWebGPU').join(', ')}\`);
  process.exit(2);
}
try {
  await bench[name](args);
  await bench.disposeWebGPU();
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
`,
);
// The wasm backend loads its binaries from the installed package (resolved from the bundle).
const wasm = packageDir('@tensorflow/tfjs-backend-wasm');
const wasmOut = path.join(out, 'node_modules', '@tensorflow', 'tfjs-backend-wasm');
mkdirSync(path.join(wasmOut, 'dist'), { recursive: true });
cpSync(path.join(wasm, 'package.json'), path.join(wasmOut, 'package.json'));
for (const file of [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
]) {
  cpSync(path.join(wasm, 'dist', file), path.join(wasmOut, 'dist', file));
}
// Dawn for Node: its loader and the linux-x64 binary.
const webgpu = packageDir('webgpu');
const webgpuOut = path.join(out, 'node_modules', 'webgpu');
mkdirSync(path.join(webgpuOut, 'dist', 'linux-x64'), { recursive: true });
for (const file of ['package.json', 'index.js', 'LICENSE.md'])
  cpSync(path.join(webgpu, file), path.join(webgpuOut, file));
cpSync(
  path.join(webgpu, 'dist', 'linux-x64', 'dawn.node'),
  path.join(webgpuOut, 'dist', 'linux-x64', 'dawn.node'),
);
console.log(`bundled into ${out}`);
