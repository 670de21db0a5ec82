import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentBackend, FinepruneError, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defaultAdapterPreferences,
  disposeWebGPU,
  registerWebGPUBackend,
  requestWebGPUDevice,
  webgpuSelection,
} from './webgpu';

describe('@fineprune/backend-webgpu in Node (Dawn)', () => {
  afterAll(async () => {
    await disposeWebGPU();
    await setBackend('wasm');
  });

  it('prefers the native Dawn backend and falls back to OpenGL (software on this machine)', () => {
    const preferences = defaultAdapterPreferences('node');
    expect(preferences.at(-1)).toEqual({ dawnBackend: 'opengl', featureLevel: 'compatibility' });
    expect(defaultAdapterPreferences('browser')[0]).toEqual({ powerPreference: 'high-performance' });
  });

  it("registers the 'webgpu' provider, computes on it, and explains the adapter it chose", async () => {
    const provider = registerWebGPUBackend();
    expect(provider).toMatchObject({ name: 'webgpu', priority: 3 });
    const selection = await setBackend('webgpu');
    expect(selection.backend).toBe('webgpu');
    expect(currentBackend()).toBe('webgpu');
    const device = webgpuSelection()!;
    expect(device.environment).toBe('node');
    expect(device.attempts.at(-1)!.ok).toBe(true);
    expect(device.preference).toEqual(device.attempts.at(-1)!.preference);
    const product = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2]));
    expect(Array.from(await product.data())).toEqual([19, 22, 43, 50]);
    product.dispose();
  });

  it("lets 'auto' time webgpu against wasm and cpu and explain the choice", async () => {
    const selection = await setBackend('auto');
    const webgpu = selection.attempts.find((attempt) => attempt.name === 'webgpu')!;
    expect(webgpu.ok).toBe(true);
    expect(webgpu.probeMilliseconds).toBeGreaterThan(0);
    expect(selection.explanation).toMatch(/webgpu [\d.]+ ms/);
    const fastest = Math.min(...selection.attempts.filter((a) => a.ok).map((a) => a.probeMilliseconds!));
    expect(selection.attempts.find((a) => a.name === selection.backend)!.probeMilliseconds).toBe(fastest);
  });

  it('tears down and sets up again', async () => {
    await disposeWebGPU();
    expect(webgpuSelection()).toBeUndefined();
    expect(tf.findBackendFactory('webgpu')).toBeNull();
    expect((globalThis as { GPUBufferUsage?: unknown }).GPUBufferUsage).toBeUndefined();
    await setBackend('webgpu');
    expect(currentBackend()).toBe('webgpu');
    expect((await tf.sum(tf.tensor1d([1, 2, 3])).data())[0]).toBe(6);
  });

  it('lists every failed preference in one BACKEND_UNAVAILABLE error', async () => {
    const gpu = { requestAdapter: async () => null };
    let error: unknown;
    try {
      await requestWebGPUDevice({ gpu, adapters: [{ powerPreference: 'high-performance' }, {}] });
    } catch (caught) {
      error = caught;
    }
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as FinepruneError).message).toContain(
      'powerPreference=high-performance: no adapter matches',
    );
    expect((error as FinepruneError).message).toContain('default: no adapter matches');
    expect((error as FinepruneError).fix).toMatch(/libegl-mesa0/);
  });

  it('lets a Node process exit after disposeWebGPU (fresh process): device destroyed, globals and backend gone', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const tsxLoader = createRequire(import.meta.url).resolve('tsx');
    const script = [
      `const { registerWebGPUBackend, disposeWebGPU, webgpuSelection } = await import(${JSON.stringify(path.join(here, 'index.ts'))});`,
      "const { setBackend } = await import('@fineprune/tensor');",
      "const tf = await import('@tensorflow/tfjs-core');",
      'registerWebGPUBackend();',
      "const { backend } = await setBackend('webgpu');",
      'const sum = (await tf.sum(tf.tensor1d([1, 2, 3])).data())[0];',
      'const device = webgpuSelection().device;',
      'await disposeWebGPU();',
      // A destroyed device reports it through `lost`; give it 10 s before calling it still alive.
      'let timer;',
      "const lost = await Promise.race([device.lost.then((info) => info.reason), new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'still alive'); })]);",
      'clearTimeout(timer);',
      'const left = {',
      "  factory: tf.findBackendFactory('webgpu') !== null,",
      '  gpu: globalThis.navigator?.gpu !== undefined,',
      "  bufferUsage: typeof globalThis.GPUBufferUsage !== 'undefined',",
      '};',
      'console.log(JSON.stringify({ backend, sum, lost, left }));',
    ].join('\n');
    const result = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', tsxLoader, '--input-type=module', '-e', script],
      { cwd: here, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    // It exited by itself: a process that Dawn kept alive would be killed at the timeout (signal set).
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1)!)).toEqual({
      backend: 'webgpu',
      sum: 6,
      lost: 'destroyed',
      left: { factory: false, gpu: false, bufferUsage: false },
    });
  });
});
