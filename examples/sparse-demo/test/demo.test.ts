/**
 * The demo page from the PACKED packages: every public package is packed and installed outside the
 * monorepo (the machinery of examples/packed-browser), the page is bundled for the browser from that
 * install, the models are written by src/prepare.ts, and headless Chromium opens the page (WebGPU on
 * SwiftShader where offered, always wasm). A screenshot is written to $SPARSE_DEMO_SCREENSHOT, or to
 * the system's temp directory.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { context } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHROMIUM_WEBGPU_FLAGS,
  expectWebGPURan,
  pageResult,
  withChromiumPage,
} from '../../packed-browser/test/chromium';
import {
  buildPage,
  lockedVersion,
  npmInstall,
  packAll,
  TFJS_PACKAGES,
} from '../../packed-browser/test/packed-project';
import type { DemoReport, DemoRow } from '../src/page';
import { prepareDemoModels } from '../src/prepare';

const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
let work: string;
let project: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'fineprune-sparse-demo-'));
  const tarballs = await packAll(path.join(work, 'tarballs'));
  project = path.join(work, 'project');
  await npmInstall(project, {
    ...Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`])),
    ...Object.fromEntries(TFJS_PACKAGES.map((name) => [name, lockedVersion(name)])),
  });
  mkdirSync(path.join(project, 'src'));
  for (const file of ['page.ts', 'encoder-compact.ts'])
    copyFileSync(path.join(source, file), path.join(project, 'src', file));
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
}, 300_000);

describe('the sparse demo page, bundled from the packed packages, in headless Chromium', () => {
  it('loads the dense and compact exports of each model, runs both, and shows size, latency and agreement', async () => {
    const www = path.join(project, 'www');
    await buildPage(project, source, www);
    // Trained models when given (see the README), else seeded ones pruned by magnitude.
    const manifest = await prepareDemoModels(path.join(www, 'models'), {
      ...(process.env.SPARSE_DEMO_MLP ? { mlp: path.resolve(process.env.SPARSE_DEMO_MLP) } : {}),
      ...(process.env.SPARSE_DEMO_ENCODER ? { encoder: path.resolve(process.env.SPARSE_DEMO_ENCODER) } : {}),
    });
    const server = await context({ logLevel: 'silent' });
    const screenshot =
      process.env.SPARSE_DEMO_SCREENSHOT ?? path.join(os.tmpdir(), 'fineprune-sparse-demo.png');
    let report: DemoReport;
    try {
      const { port } = await server.serve({ servedir: www, host: '127.0.0.1', port: 0 });
      report = await withChromiumPage(
        `http://127.0.0.1:${port}/index.html`,
        CHROMIUM_WEBGPU_FLAGS,
        async (page) => {
          // Short and narrow: the full-page screenshot ends where the page does.
          await page.setViewportSize({ width: 1200, height: 400 });
          const demoReport = await pageResult<DemoReport>(page, 'demoReport', 'demoError', 480_000);
          await page.screenshot({ path: screenshot, fullPage: true });
          return demoReport;
        },
      );
    } finally {
      await server.dispose();
    }
    const row = (backend: string, model: string, variant: string): DemoRow =>
      report.rows.find(
        (entry) => entry.backend === backend && entry.model === model && entry.variant.startsWith(variant),
      )!;
    for (const model of ['mlp', 'encoder'] as const) {
      const dense = row('wasm', model, 'dense');
      const float32 = row('wasm', model, 'compact float32');
      const int8 = row('wasm', model, 'compact int8');
      // The bytes the page downloaded are the files prepare.ts wrote.
      const files = manifest[model].files;
      expect(float32.downloadBytes).toBe(files['float32.fpsparse']);
      expect(int8.downloadBytes).toBe(files['int8.fpsparse']);
      expect(dense.downloadBytes).toBe(
        model === 'mlp'
          ? files['model.json']! + files['weights.bin']!
          : files['config.json']! + files['model.safetensors']!,
      );
      expect(int8.downloadBytes).toBeLessThan(float32.downloadBytes);
      expect(float32.downloadBytes).toBeLessThan(dense.downloadBytes);
      // float32: the same products in another order (≤ 1e-5 of the largest output after several
      // layers); int8: within a few percent; every latency measured.
      expect(float32.relativeDifference).toBeLessThanOrEqual(1e-5);
      expect(float32.agreeing).toBe(16);
      expect(int8.relativeDifference).toBeLessThan(0.05);
      for (const entry of [dense, float32, int8])
        for (const value of Object.values(entry.latency)) expect(value).toBeGreaterThan(0);
    }
    // WebGPU (the MLP only): the compact exports on the sparse WGSL kernels agree with dense.
    expectWebGPURan(report.webgpu);
    if (report.webgpu.ran) {
      const float32 = row('webgpu', 'mlp', 'compact float32');
      expect(float32.relativeDifference).toBeLessThanOrEqual(1e-5);
      expect(float32.agreeing).toBe(16);
      expect(row('webgpu', 'mlp', 'compact int8').relativeDifference).toBeLessThan(0.05);
    }
    // The MLP at 10% kept: int8 at least 15× smaller than dense float32 (the issue's target).
    expect(
      row('wasm', 'mlp', 'dense').downloadBytes / row('wasm', 'mlp', 'compact int8').downloadBytes,
    ).toBeGreaterThanOrEqual(15);
    console.info(
      `sparse demo: screenshot ${screenshot}; WebGPU ${report.webgpu.ran ? `on ${report.webgpu.adapter}` : `not offered (${report.webgpu.reason.split('\n')[0]})`}\n${report.rows
        .map(
          (entry) =>
            `  ${entry.backend} ${entry.model} ${entry.variant}: ${entry.downloadBytes} B, ${entry.latency['1'].toFixed(2)} / ${entry.latency['16'].toFixed(2)} ms, diff ${entry.relativeDifference.toExponential(1)}, ${entry.agreeing}/16${entry.sparseMatrices ? `, sparse ${entry.sparseMatrices}` : ''}`,
        )
        .join('\n')}`,
    );
  }, 900_000);
});
