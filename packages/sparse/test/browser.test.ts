import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOLERANCE } from './kernel-suite';
import type { BackendReport } from './browser/page';

// Debian's chromium package; never let a tool download a browser.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ORIGIN = 'http://localhost:8765';
const here = path.dirname(fileURLToPath(import.meta.url));

/** The files the page needs, by URL path: the bundled page and the tfjs wasm binaries. */
const files = new Map<string, { body: Buffer; contentType: string }>();

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [path.join(here, 'browser', 'page.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // Workspace packages from their TypeScript sources; Node-only paths are dynamic imports never taken.
    conditions: ['source', 'module', 'browser', 'import', 'default'],
    external: ['node:*'],
    write: false,
    logLevel: 'error',
  });
  files.set('/page.js', {
    body: Buffer.from(bundle.outputFiles[0]!.contents),
    contentType: 'text/javascript',
  });
  files.set('/', {
    body: Buffer.from('<!doctype html><meta charset="utf-8"><script type="module" src="./page.js"></script>'),
    contentType: 'text/html',
  });
  const wasmDirectory = path.join(
    path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  for (const name of readdirSync(wasmDirectory).filter((file) => file.endsWith('.wasm'))) {
    files.set(`/${name}`, {
      body: readFileSync(path.join(wasmDirectory, name)),
      contentType: 'application/wasm',
    });
  }
});

let userDataDir: string;
afterAll(() => rmSync(userDataDir, { recursive: true, force: true }));

/** Opens the page in headless Chromium (requests answered from `files`, no server, no network). */
async function runPage(flags: string[]): Promise<{ report?: Record<string, BackendReport>; error?: string }> {
  userDataDir = mkdtempSync(path.join(os.tmpdir(), 'fineprune-sparse-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', ...flags],
  });
  try {
    await context.route(`${ORIGIN}/**`, (route) => {
      const file = files.get(new URL(route.request().url()).pathname);
      return file === undefined
        ? route.fulfill({ status: 404 })
        : route.fulfill({ status: 200, body: file.body, contentType: file.contentType });
    });
    const page = await context.newPage();
    await page.goto(`${ORIGIN}/`);
    await page.waitForFunction(
      () => window.sparseReport !== undefined || window.sparseError !== undefined,
      null,
      {
        timeout: 600_000,
      },
    );
    return await page.evaluate(() => ({ report: window.sparseReport, error: window.sparseError }));
  } finally {
    await context.close();
  }
}

describe('the sparse kernels in headless Chromium', () => {
  it('match dense tf.matMul on cpu and wasm, and on webgpu where Chromium offers it', async () => {
    const { report, error } = await runPage([
      '--enable-unsafe-webgpu',
      '--enable-unsafe-swiftshader',
      '--use-webgpu-adapter=swiftshader',
    ]);
    expect(error).toBeUndefined();
    console.log(`Chromium: ${JSON.stringify(report)}`);
    for (const name of ['cpu', 'wasm']) {
      expect(report![name]).toMatchObject({ ran: true, leaked: 0, wrongShapes: 0, cases: 32 });
      expect(report![name]!.worstError).toBeLessThanOrEqual(TOLERANCE);
    }
    // Debian's chromium offers WebGPU on SwiftShader, so it must run; FINEPRUNE_WEBGPU_OPTIONAL=1
    // accepts a Chromium without it (the page must then say why).
    const webgpu = report!.webgpu!;
    if (process.env.FINEPRUNE_WEBGPU_OPTIONAL !== '1') expect(webgpu.ran, String(webgpu.reason)).toBe(true);
    if (webgpu.ran) {
      expect(webgpu).toMatchObject({ leaked: 0, wrongShapes: 0, cases: 32 });
      expect(webgpu.worstError).toBeLessThanOrEqual(TOLERANCE);
    } else {
      expect(webgpu.reason).toBeTruthy();
    }
  });
});
