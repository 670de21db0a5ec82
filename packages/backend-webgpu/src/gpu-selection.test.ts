import * as tf from '@tensorflow/tfjs-core';
import { createRandom, setBackend, topCountMasks, topCountMaskTensors } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuTopCountMasks, indexShifts } from './gpu-selection';
import { disposeWebGPU, registerWebGPUBackend } from './webgpu';
import { countWebGPUWork } from './work-counter';

/** Scores on a coarse grid (many exact ties), with both zeros, in [-range, range]. */
function tiedScores(n: number, seed: number, range = 8): Float32Array {
  const random = createRandom(seed);
  const values = Float32Array.from({ length: n }, () => Math.round((random.next() * 2 - 1) * range * 4) / 4);
  values[Math.floor(n / 3)] = -0;
  values[Math.floor(n / 2)] = 0;
  return values;
}

describe('top-count selection on the GPU', () => {
  beforeAll(async () => {
    registerWebGPUBackend();
    await setBackend('webgpu');
  });
  afterAll(async () => {
    await disposeWebGPU();
    await setBackend('cpu');
  });

  it('passes over the index bytes a position below n needs', () => {
    expect(indexShifts(200)).toEqual([0]);
    expect(indexShifts(256)).toEqual([0]);
    expect(indexShifts(257)).toEqual([8, 0]);
    expect(indexShifts(70_000)).toEqual([16, 8, 0]);
    expect(indexShifts(2 ** 24 + 1)).toEqual([24, 16, 8, 0]);
  });

  it('gives the cpu masks exactly (ties to the lower tensor, then the lower index), global and local', async () => {
    const parts = [tiedScores(1000, 1), tiedScores(300, 2), tiedScores(70_000, 3, 1000)];
    const shapes = [[1000], [30, 10], [70, 1000]];
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const tensors = parts.map((values, index) => tf.tensor(values, shapes[index]));
    for (const keep of [1, 17, 650, 35_001, total - 1]) {
      const expected = topCountMasks(parts, keep);
      const before = tf.memory().numTensors;
      const masks = gpuTopCountMasks(tensors, keep)!;
      expect(tf.memory().numTensors).toBe(before + masks.length);
      const got = await Promise.all(masks.map((mask) => mask.data()));
      got.forEach((mask, index) => {
        expect(masks[index]!.shape).toEqual(shapes[index]);
        expect(Array.from(mask)).toEqual(Array.from(expected[index]!));
      });
      tf.dispose(masks);
    }
    // Local: one tensor at a time.
    const [local] = gpuTopCountMasks([tensors[1]!], 123)!;
    expect(Array.from(await local!.data())).toEqual(Array.from(topCountMasks([parts[1]!], 123)[0]!));
    tf.dispose([local!, ...tensors]);
  });

  it('keeps none or all without a pass, and declines what it cannot select', async () => {
    const scores = tf.tensor1d([3, 1, 2]);
    const [none] = gpuTopCountMasks([scores], 0)!;
    const [all] = gpuTopCountMasks([scores], 3)!;
    expect(Array.from(await none!.data())).toEqual([0, 0, 0]);
    expect(Array.from(await all!.data())).toEqual([1, 1, 1]);
    expect(gpuTopCountMasks([scores], 4)).toBeUndefined();
    expect(gpuTopCountMasks([scores], 1.5)).toBeUndefined();
    expect(gpuTopCountMasks([tf.tensor1d([1, 2], 'int32')], 1)).toBeUndefined();
    tf.dispose([scores, none!, all!]);
  });

  it("is topCountMaskTensors' route on webgpu: no read-back, a fixed number of dispatches", async () => {
    const parts = [tiedScores(5000, 4), tiedScores(2000, 5)];
    const tensors = parts.map((values) => tf.tensor1d(values));
    await Promise.all(tensors.map((tensor) => tensor.data())); // settle the uploads before counting
    const counter = countWebGPUWork();
    const masks = topCountMaskTensors(tensors, 700)!;
    const { dispatches, readBacks } = counter.counts();
    counter.stop();
    expect(readBacks).toBe(0);
    // concat, start, 4 score passes and 2 index passes (7,000 < 2^16) of histogram + walk, 2 masks.
    expect(dispatches).toBe(1 + 1 + 2 * (4 + 2) + 2);
    const expected = topCountMasks(parts, 700);
    const got = await Promise.all(masks.map((mask) => mask.data()));
    got.forEach((mask, index) => {
      expect(Array.from(mask)).toEqual(Array.from(expected[index]!));
    });
    tf.dispose([...masks, ...tensors]);
  });
});
