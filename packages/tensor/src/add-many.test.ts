import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADD_MANY_GROUP, addMany } from './add-many';
import { setBackend } from './backend';
import { FinepruneError } from './errors';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`addMany on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('equals the sum for 1 … 60 inputs (one group, exact groups, and ragged last groups)', async () => {
      for (const count of [1, 2, ADD_MANY_GROUP, ADD_MANY_GROUP + 1, 2 * ADD_MANY_GROUP, 49, 50, 60]) {
        const before = tf.memory().numTensors;
        // Small integers: float32 sums are exact, so any grouping gives the same value.
        const inputs = Array.from({ length: count }, (_, i) => tf.tensor1d([i, -2 * i, 1], 'float32'));
        const total = addMany(inputs);
        expect(Array.from(await total.data()), `${count} inputs`).toEqual([
          (count * (count - 1)) / 2,
          -count * (count - 1),
          count,
        ]);
        // A single input comes back as a new tensor, so disposing the inputs keeps the result.
        tf.dispose(inputs);
        expect(total.isDisposed).toBe(false);
        total.dispose();
        expect(tf.memory().numTensors, `${count} inputs leak`).toBe(before);
      }
    });

    it('is differentiable: d/dx_i of the sum is 1 for every input', async () => {
      const xs = Array.from({ length: 17 }, (_, i) => tf.scalar(i + 0.5));
      const grads = tf.grads((...args: tf.Tensor[]) => addMany(args))(xs);
      expect(await Promise.all(grads.map(async (grad) => (await grad.data())[0]))).toEqual(Array(17).fill(1));
      tf.dispose([...xs, ...grads]);
    });

    it('refuses an empty list', () => {
      expect(() => addMany([])).toThrow(FinepruneError);
    });
  });
}
