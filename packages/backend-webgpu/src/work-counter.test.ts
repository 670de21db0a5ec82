import * as tf from '@tensorflow/tfjs-core';
import {
  FinepruneError,
  FUSED_KERNELS,
  fusedKernelAvailable,
  setBackend,
  topCountMaskTensors,
} from '@fineprune/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { disposeWebGPU, registerWebGPUBackend } from './webgpu';
import { countWebGPUWork } from './work-counter';

describe('countWebGPUWork and the fusedKernels option', () => {
  afterAll(async () => {
    await disposeWebGPU();
    await setBackend('cpu');
  });

  it('refuses a backend other than webgpu', async () => {
    await setBackend('cpu');
    expect(() => countWebGPUWork()).toThrow(FinepruneError);
  });

  it('counts kernels, dispatches and read-backs, and restores the backend when stopped', async () => {
    registerWebGPUBackend();
    await setBackend('webgpu');
    // Large enough that tfjs-backend-webgpu does not hand the op to the cpu.
    const a = tf.range(0, 4096);
    const counter = countWebGPUWork();
    const sum = tf.add(a, a); // one kernel, one program
    const shaped = tf.reshape(sum, [4096, 1]); // one kernel, no program
    expect((await shaped.data())[4095]).toBe(8190); // one read-back
    expect(counter.counts()).toMatchObject({ kernels: 2, dispatches: 1, readBacks: 1 });
    expect(counter.counts().byProgram).toEqual([['binary_0', 1]]);
    counter.reset();
    expect(counter.counts()).toMatchObject({ kernels: 0, dispatches: 0, readBacks: 0 });
    counter.stop();
    tf.dispose(tf.mul(a, a));
    expect(counter.counts().kernels).toBe(0);
    tf.dispose([a, sum, shaped]);
  });

  it('with fusedKernels: false, leaves the op chains and the host selection in place', async () => {
    await disposeWebGPU();
    registerWebGPUBackend({ fusedKernels: false });
    await setBackend('webgpu');
    expect(fusedKernelAvailable(FUSED_KERNELS.layerNorm)).toBe(false);
    const scores = tf.tensor1d([3, 1, 2]);
    expect(topCountMaskTensors([scores], 2)).toBeUndefined(); // no GPU route: the caller reads back
    await disposeWebGPU();
    registerWebGPUBackend();
    await setBackend('webgpu');
    expect(fusedKernelAvailable(FUSED_KERNELS.layerNorm)).toBe(true);
    const scoresOnGpu = tf.tensor1d([3, 1, 2]);
    const [mask] = topCountMaskTensors([scoresOnGpu], 2)!;
    expect(Array.from(await mask!.data())).toEqual([1, 0, 1]);
    tf.dispose([scoresOnGpu, mask!]);
  });
});
