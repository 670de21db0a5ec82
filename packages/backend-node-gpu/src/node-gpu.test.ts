import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { currentBackend, FinepruneError, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTfjsNodeGpu, NODE_GPU_BACKEND_NAME, registerNodeGpuBackend } from './node-gpu';

async function caught(promise: Promise<unknown>): Promise<FinepruneError> {
  try {
    await promise;
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    return error as FinepruneError;
  }
  throw new Error('expected a FinepruneError');
}

describe('@fineprune/backend-node-gpu', () => {
  afterAll(async () => {
    // Leave the provider unusable for later test files in this process.
    registerNodeGpuBackend({ priority: -1000, load: async () => Promise.reject(new Error('off')) });
    await setBackend('wasm');
  });

  it('says how to install tfjs-node-gpu when it is missing', async () => {
    const missing = Object.assign(
      new Error("Cannot find package '@tensorflow/tfjs-node-gpu' imported from x"),
      {
        code: 'ERR_MODULE_NOT_FOUND',
      },
    );
    const error = await caught(loadTfjsNodeGpu({ load: async () => Promise.reject(missing) }));
    expect(error.code).toBe('MISSING_DEPENDENCY');
    expect(error.message).toMatch(/optional peer dependency that is not installed/);
    expect(error.fix).toMatch(/npm install @tensorflow\/tfjs-node-gpu@4\.22\.0/);
    expect(error.fix).toMatch(/CUDA 11\.8/);
  });

  it('reports the real package as unusable here (installed without its native addon) and keeps the backend', async () => {
    // In this workspace pnpm links tfjs-node-gpu (an optional peer) but never runs its install script,
    // so its libtensorflow addon is absent: the error must say so and how to fix it.
    const error = await caught(loadTfjsNodeGpu());
    expect(error.code).toBe('MISSING_DEPENDENCY');
    expect(error.message).toMatch(/installed but could not be loaded: .*tfjs_binding\.node/);
    expect(error.fix).toMatch(/npm rebuild @tensorflow\/tfjs-node-gpu/);

    await setBackend('wasm');
    registerNodeGpuBackend();
    const selection = await caught(setBackend(NODE_GPU_BACKEND_NAME));
    expect(selection.code).toBe('BACKEND_UNAVAILABLE');
    expect(selection.message).toMatch(/tfjs_binding\.node/);
    expect(currentBackend()).toBe('wasm');
    const auto = await setBackend('auto');
    expect(auto.attempts[0]).toMatchObject({ name: 'tensorflow', ok: false });
    expect(auto.explanation).toMatch(/Failed: tensorflow: @tensorflow\/tfjs-node-gpu is installed but/);
  });

  it("activates the 'tensorflow' backend once the package has registered it", async () => {
    // Stands in for tfjs-node-gpu: registering the backend is what importing the package does.
    registerNodeGpuBackend({
      load: async () => {
        tf.registerBackend(NODE_GPU_BACKEND_NAME, () => new MathBackendCPU(), 3);
      },
    });
    try {
      const selection = await setBackend(NODE_GPU_BACKEND_NAME);
      expect(selection.backend).toBe('tensorflow');
      expect(tf.getBackend()).toBe('tensorflow');
    } finally {
      await setBackend('wasm');
      tf.removeBackend(NODE_GPU_BACKEND_NAME);
    }
  });
});
