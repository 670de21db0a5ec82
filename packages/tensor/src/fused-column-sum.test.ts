import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { columnSums, FUSED_COLUMN_SUM_KERNEL } from './fused-column-sum';
import { kernelsRun, largestDifference, seededValues } from './fused-test-support';

afterAll(async () => {
  await setBackend('cpu');
});

describe('columnSums', () => {
  it('sums small integers exactly, on one fused kernel on wasm', async () => {
    await setBackend('wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4], [3, 4]);
    const names = await kernelsRun(() => columnSums(x));
    expect(names).toEqual([FUSED_COLUMN_SUM_KERNEL]);
    const sums = columnSums(x);
    expect([...(await sums.data())]).toEqual([5, 6, 7, 8]);
    tf.dispose([x, sums]);
  });

  it('is bit-identical to the wasm tf.sum, within 3e-5 of cpu, on a [2048, 132] bias gradient and leaves no tensor', async () => {
    const values = seededValues(2048 * 132, 31);
    const sum = async (backend: string, fused: boolean) => {
      await setBackend(backend);
      if (!fused) process.env.FINEPRUNE_FUSED = '0';
      const result = tf.tidy(() => columnSums(tf.tensor2d(values, [2048, 132])).dataSync());
      delete process.env.FINEPRUNE_FUSED;
      return result;
    };
    const cpu = await sum('cpu', true);
    const before = tf.memory().numTensors;
    const [wasm, plain] = [await sum('wasm', true), await sum('wasm', false)];
    expect(tf.memory().numTensors).toBe(before);
    // Bit-identical to the wasm tf.sum (the same float32 running sums in row order); both 1.5e-5 from
    // cpu (|Δ|/max(1, |cpu|), measured), whose sums run in float64.
    expect(wasm).toEqual(plain);
    expect(largestDifference(wasm, cpu)).toBeLessThan(3e-5);
  });

  it('takes tf.sum when FINEPRUNE_FUSED=0 or the column count is not a multiple of 4', async () => {
    await setBackend('wasm');
    process.env.FINEPRUNE_FUSED = '0';
    const off = await kernelsRun(() => tf.tidy(() => columnSums(tf.ones([3, 8]))));
    delete process.env.FINEPRUNE_FUSED;
    expect(off).not.toContain(FUSED_COLUMN_SUM_KERNEL);
    expect(await kernelsRun(() => tf.tidy(() => columnSums(tf.ones([3, 6]))))).not.toContain(
      FUSED_COLUMN_SUM_KERNEL,
    );
  });
});
