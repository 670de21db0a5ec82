/**
 * Bundles the page with esbuild into dist/: page.js, index.html, and the tfjs-backend-wasm binaries.
 *
 *   pnpm --filter @fineprune/example-browser-webgpu build
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Builds the page into `outDir` (default dist/) and returns the directory. */
export async function buildPage(outDir = path.join(root, 'dist')): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(root, 'src', 'page.ts')],
    outfile: path.join(outDir, 'page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // Workspace packages are bundled from their TypeScript sources.
    conditions: ['source', 'module', 'browser', 'import', 'default'],
    // Node-only code paths (the wasm binaries' location in Node, Dawn) are dynamic imports never taken here.
    external: ['node:*'],
    logLevel: 'warning',
  });
  copyFileSync(path.join(root, 'public', 'index.html'), path.join(outDir, 'index.html'));
  const require = createRequire(import.meta.url);
  const wasmDirectory = path.join(
    path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  for (const file of readdirSync(wasmDirectory).filter((name) => name.endsWith('.wasm'))) {
    copyFileSync(path.join(wasmDirectory, file), path.join(outDir, file));
  }
  return outDir;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildPage().then((directory) => console.log(`built ${directory}`));
}
