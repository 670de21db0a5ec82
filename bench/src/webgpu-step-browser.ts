/**
 * The `webgpu-step` measurement in headless Chromium (Debian's /usr/bin/chromium, or
 * `CHROMIUM_PATH`): WebGPU through Chromium's own Dawn on SwiftShader (software Vulkan) on a machine
 * without a GPU, or on the GPU where there is one (pass `--gpu` to drop the SwiftShader flags). The
 * page is bundled with esbuild and served from memory through Playwright's request routing on
 * http://localhost (a secure context, as WebGPU requires). Writes results/webgpu-step-chromium[-<label>].json.
 *
 *   cd bench && npx tsx --conditions=source src/webgpu-step-browser.ts [--steps 2] [--batch 4] [--gpu] [--label h100]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { SMALL_ENCODER } from './encoder-fixtures';
import { runIfScript, writeResult } from './harness';

const here = path.dirname(fileURLToPath(import.meta.url));
const ORIGIN = 'http://localhost:8765';
/** Headless, as root, on a closed network. */
const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** WebGPU on SwiftShader, shipped with Chromium: what works on the project's machine (no GPU). */
const SWIFTSHADER_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-webgpu-adapter=swiftshader',
];

async function bundle(): Promise<string> {
  const output = await build({
    entryPoints: [path.join(here, 'webgpu-step-page.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source', 'module', 'browser', 'import', 'default'],
    // Node-only paths (Dawn, the wasm binaries' location in Node) are dynamic imports never taken here.
    external: ['node:*', 'webgpu'],
    logLevel: 'warning',
  });
  return output.outputFiles[0]!.text;
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '2' },
      batch: { type: 'string', default: '4' },
      gpu: { type: 'boolean', default: false },
      label: { type: 'string' },
    },
  });
  const script = await bundle();
  const flags = [...BASE_FLAGS, ...(values.gpu ? ['--enable-unsafe-webgpu'] : SWIFTSHADER_FLAGS)];
  const profile = mkdtempSync(path.join(os.tmpdir(), 'fineprune-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: flags,
  });
  try {
    const page = await browser.newPage();
    page.on('console', (message) => console.log(`[page] ${message.text()}`));
    await page.route(`${ORIGIN}/**`, (route) => {
      const file = new URL(route.request().url()).pathname;
      if (file === '/page.js') return route.fulfill({ body: script, contentType: 'text/javascript' });
      return route.fulfill({
        body: '<!doctype html><meta charset="utf-8"><title>webgpu-step</title><script type="module" src="/page.js"></script>',
        contentType: 'text/html',
      });
    });
    const options = { config: SMALL_ENCODER, steps: Number(values.steps), batchSize: Number(values.batch) };
    await page.addInitScript((given) => {
      (window as unknown as { webgpuStepOptions: unknown }).webgpuStepOptions = given;
    }, options);
    await page.goto(`${ORIGIN}/`);
    await page.waitForFunction(
      () => window.webgpuStepResult !== undefined || window.webgpuStepError !== undefined,
      null,
      {
        timeout: 3_600_000,
        polling: 1000,
      },
    );
    const { result, error } = await page.evaluate(() => ({
      result: window.webgpuStepResult,
      error: window.webgpuStepError,
    }));
    if (error !== undefined) throw new Error(`the page failed: ${error}`);
    const version = browser.browser()?.version();
    const file = writeResult(values.label ? `webgpu-step-chromium-${values.label}` : 'webgpu-step-chromium', {
      chromium: version,
      chromiumFlags: flags,
      ...result,
    });
    console.log(JSON.stringify(result, null, 2));
    console.log(`written to ${file}`);
    return result!;
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

runIfScript(import.meta.url, main);
