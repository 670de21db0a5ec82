import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { seededValues, kernelsRun } from './fused-test-support';
import { FUSED_TRANSPOSE_KERNEL, transposeLastTwo } from './fused-transpose';

afterAll(async () => {
  await setBackend('cpu');
});

describe('transposeLastTwo', () => {
  it('is bit-identical to tf.transpose on wasm for matrices and batches, on one fused kernel', async () => {
    await setBackend('wasm');
    for (const shape of [
      [4, 4],
      [8, 12],
      [3, 2, 16, 8],
      [512, 132],
    ]) {
      const x = tf.tensor(seededValues(tf.util.sizeFromShape(shape), shape.length * 100 + shape[0]!), shape);
      const perm = [...shape.keys()];
      [perm[shape.length - 2], perm[shape.length - 1]] = [shape.length - 1, shape.length - 2];
      const expected = tf.transpose(x, perm);
      const names = await kernelsRun(() => transposeLastTwo(x));
      const actual = transposeLastTwo(x);
      expect(names).toEqual([FUSED_TRANSPOSE_KERNEL]);
      expect(actual.shape).toEqual(expected.shape);
      expect(actual.dataSync()).toEqual(expected.dataSync());
      tf.dispose([x, expected, actual]);
    }
  });

  it('takes tf.transpose when FINEPRUNE_FUSED=0 or an axis is not a multiple of 4', async () => {
    await setBackend('wasm');
    process.env.FINEPRUNE_FUSED = '0';
    const off = await kernelsRun(() => tf.tidy(() => transposeLastTwo(tf.ones([4, 8]))));
    delete process.env.FINEPRUNE_FUSED;
    const ragged = await kernelsRun(() => tf.tidy(() => transposeLastTwo(tf.ones([4, 6]))));
    for (const names of [off, ragged]) expect(names).toEqual(['Transpose']);
    const transposed = tf.tidy(() => transposeLastTwo(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])));
    expect([...(await transposed.data())]).toEqual([1, 4, 2, 5, 3, 6]);
    transposed.dispose();
  });
});
