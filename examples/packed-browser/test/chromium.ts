/**
 * Headless Chromium for the packed-packages browser tests: Debian's chromium (never a downloaded
 * one), on a closed network, in a new profile per launch.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';

/** Debian's chromium package, or `CHROMIUM_PATH`. Never let a tool download its own browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Headless, as root, on a closed network, in a new profile (the user data folder is per launch). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** WebGPU on SwiftShader (software Vulkan, shipped with Chromium), where this Chromium offers it. */
export const WEBGPU_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-webgpu-adapter=swiftshader',
];
/** The flags with WebGPU on (and the GPU process allowed). */
export const CHROMIUM_WEBGPU_FLAGS = [
  ...CHROMIUM_FLAGS.filter((flag) => flag !== '--disable-gpu'),
  ...WEBGPU_FLAGS,
];

/**
 * Fails unless the page ran WebGPU: Debian's chromium offers it on SwiftShader, so a page without it
 * means a broken set-up, not a pass. `FINEPRUNE_WEBGPU_OPTIONAL=1` accepts a Chromium without
 * WebGPU (the page must then say why), for machines whose Chromium build leaves it out.
 */
export function expectWebGPURan(webgpu: { ran: boolean; reason?: string }): void {
  if (process.env.FINEPRUNE_WEBGPU_OPTIONAL === '1' && !webgpu.ran) {
    expect(webgpu.reason).toBeTruthy();
    return;
  }
  expect(webgpu.ran, `WebGPU did not run in Chromium: ${webgpu.reason ?? '(no reason given)'}`).toBe(true);
}

/**
 * Opens `url` in a fresh headless Chromium, runs `use` on the page, and closes the browser and its
 * profile whatever happens.
 */
export async function withChromiumPage<T>(
  url: string,
  flags: readonly string[],
  use: (page: Page) => Promise<T>,
): Promise<T> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'fineprune-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...flags],
  });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    return await use(page);
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
}

/**
 * Waits until the page sets `window[resultKey]` or `window[errorKey]` and returns the result; the
 * page's error fails the call with the page's message.
 */
export async function pageResult<T>(
  page: Page,
  resultKey: string,
  errorKey: string,
  timeoutMs: number,
): Promise<T> {
  await page.waitForFunction(
    ([result, error]) => {
      const scope = window as unknown as Record<string, unknown>;
      return scope[result!] !== undefined || scope[error!] !== undefined;
    },
    [resultKey, errorKey],
    { timeout: timeoutMs },
  );
  const { result, error } = await page.evaluate(
    ([resultName, errorName]) => {
      const scope = window as unknown as Record<string, unknown>;
      return { result: scope[resultName!], error: scope[errorName!] };
    },
    [resultKey, errorKey],
  );
  if (error !== undefined) throw new Error(`the page failed: ${String(error)}`);
  return result as T;
}
