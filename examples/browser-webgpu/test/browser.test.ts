import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPage } from '../src/build';
import type { PruneReport } from '../src/prune';
import { serve } from '../src/serve';

// Debian's chromium package. Never let a tool download its own browser.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Flags for a headless root run on a closed network (see the project's machine notes).
const BASE_FLAGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let server: Server;
let url: string;
let outDir: string;
let browser: Browser | undefined;

async function runPage(
  flags: string[],
): Promise<{ report?: PruneReport; error?: string; adapterOffered: boolean }> {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'fineprune-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE_FLAGS, ...flags],
  });
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(
      () => window.pruneReport !== undefined || window.pruneError !== undefined,
      null,
      {
        timeout: 90_000,
      },
    );
    const outcome = await page.evaluate(() => ({ report: window.pruneReport, error: window.pruneError }));
    // Asked of the browser itself, apart from the example: does it offer a WebGPU adapter at all?
    const adapterOffered = await page.evaluate(async () => {
      const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return gpu !== undefined && (await gpu.requestAdapter()) !== null;
    });
    return { ...outcome, adapterOffered };
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

function expectPruned(report: PruneReport): void {
  // 50% global sparsity over 16·32 + 32·4 = 640 weights: 320 kept in total.
  const kept = report.keptFractions[0]! * 512 + report.keptFractions[1]! * 128;
  expect(Math.round(kept)).toBe(320);
  expect(report.nonZeroPruned).toEqual([0, 0]);
  expect(report.lossAfter).toBeLessThan(report.lossBefore);
}

describe('examples/browser-webgpu in headless Chromium', () => {
  beforeAll(async () => {
    outDir = mkdtempSync(path.join(os.tmpdir(), 'fineprune-page-'));
    await buildPage(outDir);
    ({ server, url } = await serve(outDir));
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(outDir, { recursive: true, force: true });
  });

  it('prunes with WebGPU where Chromium offers it (SwiftShader here), else says why and uses wasm', async () => {
    const { report, error, adapterOffered } = await runPage([
      '--enable-unsafe-webgpu',
      '--enable-unsafe-swiftshader',
      '--use-webgpu-adapter=swiftshader',
    ]);
    expect(error).toBeUndefined();
    // Where the browser offers an adapter the example must use it; a fallback then is a failure.
    expect(report!.backend).toBe(adapterOffered ? 'webgpu' : 'wasm');
    expect(report!.fallbackReason ?? 'none').toMatch(adapterOffered ? /^none$/ : /webgpu/i);
    expectPruned(report!);
    console.log(
      `WebGPU flags: backend ${report!.backend} (${report!.adapter ?? report!.fallbackReason}), ${report!.milliseconds} ms`,
    );
  });

  it('falls back to wasm with WebGPU disabled (--disable-gpu), and still prunes', async () => {
    const { report, error, adapterOffered } = await runPage(['--disable-gpu', '--disable-features=WebGPU']);
    expect(error).toBeUndefined();
    expect(adapterOffered).toBe(false);
    expect(report!.backend).toBe('wasm');
    expect(report!.fallbackReason).toMatch(/webgpu/i);
    expectPruned(report!);
  });
});
